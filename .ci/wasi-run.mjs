// Cargo runner for wasm32-wasip1 test binaries under Node >= 20 (node:wasi):
//   node .ci/wasi-run.mjs <file.wasm> [args...]
//
// The guest's relative paths resolve in the host's working directory (cargo
// runs tests in the package root), so the suites read and write
// proptest-regressions/ there as on any other target. This takes a preopen
// named "." and no other: wasi-libc resolves a relative path against its
// working directory "/" first, so a "/" preopen would capture it. Absolute
// paths are not visible to the guest.
// A trap (a panic: wasip1 aborts) exits with 101, like a failed native test.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv, cwd, env, exit } from 'node:process';

const [file, ...args] = argv.slice(2);
if (!file) {
    console.error('usage: node wasi-run.mjs <file.wasm> [args...]');
    exit(2);
}
const wasi = new WASI({
    version: 'preview1',
    args: [file, ...args],
    env,
    preopens: { '.': cwd() },
    returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
let code;
try {
    code = wasi.start(instance);
} catch (e) {
    console.error(`wasm trap: ${e.message}`);
    code = 101;
}
exit(code ?? 0);
