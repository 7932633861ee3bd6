// Builds the package (dist/: ES modules and type declarations) and the demo
// canvas app that canvasd embeds (httpapi/web/static/). Both outputs are
// committed; canvasd's tests rebuild them into a temporary directory
// (--out DIR) and fail when the committed files differ.
//
//   node scripts/build.mjs            write dist/ and httpapi/web/static/
//   node scripts/build.mjs --out DIR  write DIR/dist/ and DIR/static/ instead
import {build} from 'esbuild';
import {execFileSync} from 'node:child_process';
import {copyFileSync, mkdirSync, readdirSync, rmSync} from 'node:fs';
import {dirname, join, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outArg = process.argv.indexOf('--out');
const out = outArg > 0 ? resolve(process.argv[outArg + 1]) : null;
const distDir = out ? join(out, 'dist') : join(pkg, 'dist');
const staticDir = out ? join(out, 'static') : join(pkg, '..', '..', 'httpapi', 'web', 'static');

for (const dir of [distDir, staticDir]) {
  rmSync(dir, {recursive: true, force: true});
  mkdirSync(dir, {recursive: true});
}

const common = {
  absWorkingDir: pkg,
  bundle: true,
  format: 'esm',
  target: 'es2022',
  charset: 'utf8',
  logLevel: 'warning',
};

// The package: one module per entry point, replicache left to the app;
// code both entry points use goes into a shared chunk, so an app importing
// both gets one copy of the mutators.
await build({
  ...common,
  entryPoints: ['src/index.ts', 'src/mutators.ts'],
  outdir: distDir,
  splitting: true,
  chunkNames: 'chunk-[hash]',
  external: ['replicache'],
  platform: 'neutral',
});
execFileSync(process.execPath, [join(pkg, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json', '--outDir', distDir], {
  cwd: pkg,
  stdio: 'inherit',
});

// The demo app: one script with replicache inside, one stylesheet, one page.
await build({
  ...common,
  entryPoints: {app: 'demo/main.ts'},
  outdir: staticDir,
  platform: 'browser',
  minify: true,
  legalComments: 'none',
});
await build({
  ...common,
  entryPoints: {app: 'demo/style.css'},
  outdir: staticDir,
  minify: true,
});
for (const f of readdirSync(join(pkg, 'demo'))) {
  if (f.endsWith('.html') || f.endsWith('.svg')) copyFileSync(join(pkg, 'demo', f), join(staticDir, f));
}
