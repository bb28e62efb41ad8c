/** Terminal output of the demo: plain lines, a little colour on a terminal. */

const colour = process.stdout.isTTY === true && !process.env.NO_COLOR;
const paint =
  (open: number, close: number) =>
  (text: string | number): string =>
    colour ? `\u001b[${open}m${text}\u001b[${close}m` : String(text);

export const bold = paint(1, 22);
export const dim = paint(2, 22);
export const green = paint(32, 39);
export const red = paint(31, 39);
export const yellow = paint(33, 39);
export const cyan = paint(36, 39);

// A reader that went away (`npm run demo | head`) must not crash the demo before it
// has stopped its replicas: after EPIPE, output is dropped.
let writable = true;
process.stdout.on('error', () => {
  writable = false;
});

/** Prints one line. */
export function say(line = ''): void {
  if (writable) process.stdout.write(`${line}\n`);
}

/** Milliseconds as a right-aligned whole number with its unit. */
export function ms(value: number, width = 0): string {
  return `${String(Math.round(value)).padStart(width)} ms`;
}
