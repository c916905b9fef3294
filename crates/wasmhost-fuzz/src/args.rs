//! JSON and WAVE arguments against WIT types: calls of a component whose
//! exports cover every WIT type (scalars, strings, lists, tuples, records,
//! variants, enums, flags, options, results, nested), made from the WIT
//! below by `wit-component`'s dummy module, whose functions trap when
//! called.
//!
//! The first input byte picks the function and the format (JSON or WAVE);
//! the rest is the argument text. Invariant: arguments that do not fit the
//! types are `bad_input` naming the place; arguments that fit reach the
//! guest, which traps (`trap`). Nothing else, and never a panic.

use std::sync::OnceLock;

use wasmhost::{ArgsFormat, CallOptions, Convention, ErrorCode, Module};

use crate::expect_code;

/// The WIT world of the component the arguments are checked against.
pub const WIT: &str = r#"
package wasmhost:fuzz@0.1.0;

world args {
  record point { x: s32, y: s32 }
  variant shape { circle(f64), rect(point), empty }
  enum color { red, green, blue }
  flags perms { read, write, exec }
  record person { name: string, age: u8, email: option<string>, tags: list<string> }

  export scalars: func(a: bool, b: s8, c: u8, d: s16, e: u16, f: s32, g: u32, h: s64, i: u64, j: f32, k: f64, l: char);
  export text: func(s: string);
  export bytes: func(xs: list<u8>, ys: list<list<s64>>);
  export shapes: func(s: shape, c: color, p: perms);
  export people: func(p: person, q: option<point>);
  export nested: func(r: result<list<tuple<u32, string>>, option<color>>, o: option<option<s8>>);
  export many: func(a: tuple<f32, f64, char, string>, b: list<person>, c: list<shape>, d: result, e: result<_, string>, f: u64, g: s64, h: u32, i: string);
  export floats: func(x: f32) -> f32;
  export none: func();
}
"#;

/// The component's functions, picked by the first byte of the input.
pub const FUNCTIONS: [&str; 9] = [
    "scalars", "text", "bytes", "shapes", "people", "nested", "many", "floats", "none",
];

/// The component built from [`WIT`]: a dummy core module (every export
/// traps) with the WIT embedded, encoded as a component.
pub fn component_bytes() -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve
        .push_str("args.wit", WIT)
        .unwrap_or_else(|e| panic!("the fuzz WIT does not parse: {e:#}"));
    let world = resolve
        .select_world(&[pkg], Some("args"))
        .unwrap_or_else(|e| panic!("no world `args`: {e:#}"));
    let mut core =
        wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
    wit_component::embed_component_metadata(
        &mut core,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap_or_else(|e| panic!("cannot embed the WIT: {e:#}"));
    wit_component::ComponentEncoder::default()
        .module(&core)
        .and_then(|enc| enc.validate(true).encode())
        .unwrap_or_else(|e| panic!("cannot encode the component: {e:#}"))
}

fn module() -> &'static Module {
    static M: OnceLock<Module> = OnceLock::new();
    M.get_or_init(|| {
        crate::module::runtime()
            .load_bytes(component_bytes())
            .unwrap_or_else(|e| panic!("the fuzz component does not load: {e}"))
    })
}

/// Calls `function` of the component with `text` as its arguments.
pub fn call(
    function: &str,
    format: ArgsFormat,
    text: &[u8],
) -> wasmhost::Result<wasmhost::Outcome<wasmhost::Data>> {
    let opts = CallOptions::default()
        .convention(Convention::Component)
        .args(format);
    module().call_with(function, text, &opts)
}

/// One call: `data[0]` picks the function (and WAVE when its top bit is
/// set), `data[1..]` is the argument text.
pub fn component_args(data: &[u8]) {
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    let function = FUNCTIONS[usize::from(pick & 0x7f) % FUNCTIONS.len()];
    let format = if pick & 0x80 != 0 {
        ArgsFormat::Wave
    } else {
        ArgsFormat::Json
    };
    match call(function, format, text) {
        Ok(out) => panic!("`{function}` returned {:?}, but its body traps", out.value),
        Err(e) => expect_code(
            &format!("{function} {format:?} arguments"),
            &e,
            &[ErrorCode::BadInput, ErrorCode::Trap],
        ),
    }
}
