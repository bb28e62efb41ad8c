/**
 * The live view: the store tree and every election of a Doozer store on one
 * page in the browser, updated live (see docs/live-view.md). A Doozer client
 * of the store, so it works against any Doozer server.
 */
export { LiveView, type LiveViewOptions } from './live-view.js';
export type { SnapshotMessage, UpdateMessage, StatusMessage } from './state.js';
export type { ElectionView, EndReason, LeaseView, TimelineEntry } from './elections.js';
export type { FileView, TreeView } from './mirror.js';
