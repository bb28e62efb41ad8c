/** One way to put an unknown thrown value into a log line or an error message. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
