// Bundles the dashboard into exactly index.html, dashboard.js and dashboard.css.
// Usage: npm run build -- [outdir]   (default: dist/, or $DASHBOARD_OUT)

import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const clientDir = path.dirname(fileURLToPath(import.meta.url));
// npm runs scripts in the package folder; resolve a relative outdir against where npm was invoked.
const invokedFrom = process.env.INIT_CWD ?? process.cwd();
const outdir = path.resolve(invokedFrom, process.argv[2] ?? process.env.DASHBOARD_OUT ?? path.join(clientDir, 'dist'));

await mkdir(outdir, { recursive: true });
await build({
  absWorkingDir: clientDir,
  entryPoints: { dashboard: 'src/main.js' },
  outdir,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  legalComments: 'eof',
  logLevel: 'warning',
});
await copyFile(path.join(clientDir, 'src', 'index.html'), path.join(outdir, 'index.html'));
console.log(`dashboard built into ${outdir}`);
