// The dashboard's jco bundle (built by scripts/build-jco.sh into
// ../assets/jco/jco-bundle.js, served at /assets/jco-bundle.js): jco's
// transpiler, whose browser build is itself a component transpiled to
// JavaScript (it fetches its core wasm beside the bundle), and the WASI
// preview 2 shims for the browser that a transpiled component is
// instantiated with.
export { generate as transpile } from '@bytecodealliance/jco';
export { WASIShim } from '@bytecodealliance/preview2-shim/instantiation';
