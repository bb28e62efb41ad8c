#!/usr/bin/env node
/**
 * `elect-run-command`: runs commands when this process becomes master or
 * slave of a Doozer master election, and with `--run` supervises a command
 * only while master. See docs/cli.md.
 *
 *     elect-run-command [--participate] [--master-cmd CMD] [--slave-cmd CMD] [--error-cmd CMD]
 *                       [--run -- COMMAND [ARGS...]]
 */
import { main } from './main.js';

// No top-level await: this file is also compiled to CommonJS (dist/cjs), which has none.
void main(process.argv.slice(2)).then((code) => process.exit(code));
