// Bundles entry.js (jco's browser transpiler + the WASI preview 2 browser
// shims) with esbuild into OUT (default ../assets/jco), with the core wasm
// files jco's transpiler fetches beside itself. Run by scripts/build-jco.sh
// after `npm ci`; the output depends only on package-lock.json and these
// files. A file is rewritten only when its bytes change, so cargo (whose
// build script watches assets/) rebuilds the server only then.
//
//   node build.mjs [OUT]
import { build } from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync, renameSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, basename, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, '../assets/jco'));
const version = (pkg) => JSON.parse(readFileSync(join(here, 'node_modules', pkg, 'package.json'), 'utf8')).version;
const jco = version('@bytecodealliance/jco');
const shim = version('@bytecodealliance/preview2-shim');

const result = await build({
  entryPoints: [join(here, 'entry.js')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  // Only reached under Node (jco checks `process.versions.node` first).
  external: ['node:*'],
  charset: 'utf8',
  minify: true,
  legalComments: 'eof',
  metafile: true,
  write: false,
  logLevel: 'warning',
  banner: {
    js: `// jco ${jco} (transpiler) and @bytecodealliance/preview2-shim ${shim} (WASI shims),\n` +
      '// bundled by crates/wasmhost-server/jco/build.mjs for the wasmhost dashboard.\n' +
      '// Both: Apache-2.0 WITH LLVM-exception, https://github.com/bytecodealliance/jco\n',
  },
});

// The files fetched at run time with `new URL('./X.wasm', import.meta.url)`:
// the core modules of the transpiler, beside the JavaScript it was bundled from.
const files = new Map([['jco-bundle.js', result.outputFiles[0].contents]]);
const wanted = /new URL\(["']\.\/([\w.-]+\.wasm)["'],\s*import\.meta\.url\)/g;
const text = result.outputFiles[0].text;
for (const input of Object.keys(result.metafile.inputs)) {
  const source = readFileSync(resolve(input), 'utf8');
  for (const [, name] of source.matchAll(wanted)) {
    if (!text.includes(`"./${name}"`)) continue;
    files.set(name, readFileSync(join(dirname(resolve(input)), name)));
  }
}
if (files.size < 2) throw new Error('no core wasm of the transpiler found beside its JavaScript');

mkdirSync(out, { recursive: true });
for (const [name, bytes] of files) {
  const path = join(out, name);
  if (existsSync(path) && Buffer.compare(readFileSync(path), Buffer.from(bytes)) === 0) continue;
  writeFileSync(`${path}.tmp`, bytes);
  renameSync(`${path}.tmp`, path);
}
// No other bundle file stays in OUT (one an older jco needed would be served too).
for (const name of readdirSync(out)) {
  if (!files.has(name) && /\.(js|wasm|tmp)$/.test(name)) rmSync(join(out, name), { force: true });
}
for (const [name, bytes] of files) console.log(`${String(bytes.length).padStart(10)}  ${basename(out)}/${name}`);
