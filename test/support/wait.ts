/**
 * Waits until `cond()` holds, checking after every macrotask turn (and after
 * `step()`, which tests use to move a manual clock). Fails after `timeoutMs`
 * of real time with `what` in the message. This waits on a condition, not for
 * a fixed time: it returns as soon as the condition holds.
 */
export async function waitFor(
  cond: () => boolean,
  what: string,
  options: { timeoutMs?: number; step?: () => void } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  for (;;) {
    if (cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    options.step?.();
    await new Promise((r) => setTimeout(r, 2));
  }
}
