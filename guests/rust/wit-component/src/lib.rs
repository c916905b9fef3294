//! Component-model guest (`wasm32-wasip2`) for the wasmhost tests and
//! benchmarks: the exports of `wit/world.wit` (world `wasmhost:example/example`)
//! over records, variants, enums, flags, options, results and lists, plus one
//! call back into the host (`wasmhost:example/host.greet`).
//!
//! Built by `scripts/build-guests.sh` into `target/guests/out/wit-component.wasm`.

// The generated glue has functions with more than 7 parameters (flattened records).
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "example",
    path: "wit",
});

use wasmhost::example::host;

struct Example;

impl Guest for Example {
    /// Component-wise sum, wrapping on overflow.
    fn add_points(a: Point, b: Point) -> Point {
        Point {
            x: a.x.wrapping_add(b.x),
            y: a.y.wrapping_add(b.y),
        }
    }

    /// circle(r) -> pi*r*r, rect(p) -> |x*y| (computed in f64, so no overflow), empty -> 0.
    fn area(s: Shape) -> f64 {
        match s {
            Shape::Circle(r) => std::f64::consts::PI * r * r,
            Shape::Rect(p) => (p.x as f64 * p.y as f64).abs(),
            Shape::Empty => 0.0,
        }
    }

    /// Sum of the list, wrapping on overflow; 0 for an empty list.
    fn sum(xs: Vec<i64>) -> i64 {
        xs.iter().fold(0i64, |acc, x| acc.wrapping_add(*x))
    }

    /// Index of the first element equal to `needle`, or none.
    fn find(xs: Vec<String>, needle: String) -> Option<u32> {
        xs.iter().position(|x| *x == needle).map(|i| i as u32)
    }

    /// a / b truncated toward zero; err "division by zero" when b = 0 and
    /// err "overflow" for i32::MIN / -1.
    fn divide(a: i32, b: i32) -> Result<i32, String> {
        if b == 0 {
            return Err("division by zero".to_string());
        }
        a.checked_div(b).ok_or_else(|| "overflow".to_string())
    }

    /// "<color> <rwx>", e.g. "green rw-".
    fn describe(c: Color, p: Perms) -> String {
        let color = match c {
            Color::Red => "red",
            Color::Green => "green",
            Color::Blue => "blue",
        };
        let flag = |f: Perms, ch: char| if p.contains(f) { ch } else { '-' };
        format!(
            "{color} {}{}{}",
            flag(Perms::READ, 'r'),
            flag(Perms::WRITE, 'w'),
            flag(Perms::EXEC, 'x')
        )
    }

    /// "Hi <name> (<age>)", then " <email>" if some, then " [tag1,tag2]".
    fn greet_person(p: Person) -> String {
        let mut s = format!("Hi {} ({})", p.name, p.age);
        if let Some(email) = &p.email {
            s.push(' ');
            s.push_str(email);
        }
        s.push_str(" [");
        s.push_str(&p.tags.join(","));
        s.push(']');
        s
    }

    fn echo_person(p: Person) -> Person {
        p
    }

    /// "guest got: " + host.greet(name).
    fn call_host(name: String) -> String {
        format!("guest got: {}", host::greet(&name))
    }
}

export!(Example);
