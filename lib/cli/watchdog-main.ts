/**
 * The program of the `--run` dead man's switch (see watchdog.ts). The CLI
 * starts it as `node watchdog-main.js <config JSON>`, detached, with a pipe on
 * fd 3; it is not meant to be run by hand.
 */
import { parseWatchdogConfig, runWatchdog } from './watchdog.js';

try {
  runWatchdog(parseWatchdogConfig(process.argv[2]));
} catch (e) {
  process.stderr.write(`elect-run-command watchdog: bad configuration: ${(e as Error).message}\n`);
  process.exit(2);
}
