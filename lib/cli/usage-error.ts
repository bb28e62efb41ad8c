/** The usage error of `elect-run-command`, in a file of its own so that every option module can throw it. */

/** A bad command line; `main` prints it with the usage line and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
