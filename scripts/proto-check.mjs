// Fails when lib/wire/gen/ is not what `buf generate` makes of lib/wire/doozer.proto.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const out = mkdtempSync(join(tmpdir(), 'proto-check-'));
try {
  const template = join(out, 'buf.gen.yaml');
  writeFileSync(
    template,
    readFileSync('buf.gen.yaml', 'utf8').replace('out: lib/wire/gen', `out: ${out}/gen`),
  );
  execFileSync('npx', ['--no-install', 'buf', 'generate', '--template', template], {
    stdio: 'inherit',
  });
  const stale = readdirSync(join(out, 'gen')).filter(
    (f) =>
      readFileSync(join(out, 'gen', f), 'utf8') !== readFileSync(join('lib/wire/gen', f), 'utf8'),
  );
  if (stale.length > 0) {
    console.error(`lib/wire/gen is stale (${stale.join(', ')}): run npm run proto`);
    process.exit(1);
  }
  console.log('lib/wire/gen matches lib/wire/doozer.proto');
} finally {
  rmSync(out, { recursive: true, force: true });
}
