//! A `wasi:http/proxy` component for the wasi:http worker tests.
//!
//! | request | response |
//! |---|---|
//! | `GET /` | 200 `hello, world\n` (text/plain) |
//! | `POST /echo` | 200, the request body, header `x-echo-len: N` |
//! | `/headers` | 200, the value of the request's `x-test` header |
//! | `/status/418` | 418 |
//! | `/spin` | loops forever before answering (timeouts) |
//! | `/spin-body` | sends 200 and part of a body, then loops forever |
//! | `/grow` | allocates memory until the allocator aborts (memory limits) |
//! | anything else | 404 |

use std::io::{Read as _, Write as _};

use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasip2::http::proxy::export!(Hello);

struct Hello;

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let path = path.split('?').next().unwrap_or_default().to_string();
        match (request.method(), path.as_str()) {
            (Method::Get, "/") => respond(
                out,
                200,
                &[("content-type", b"text/plain")],
                b"hello, world\n",
            ),
            (Method::Post, "/echo") => {
                let body = read_body(&request);
                let len = body.len().to_string();
                respond(out, 200, &[("x-echo-len", len.as_bytes())], &body);
            }
            (_, "/headers") => {
                let value = request.headers().get("x-test").concat();
                respond(out, 200, &[], &value);
            }
            (_, "/status/418") => respond(out, 418, &[], b"I'm a teapot\n"),
            (_, "/spin") => spin(),
            (_, "/spin-body") => {
                let response = OutgoingResponse::new(Fields::new());
                let body = response.body().expect("body");
                ResponseOutparam::set(out, Ok(response));
                let mut stream = body.write().expect("stream");
                stream.write_all(b"partial").expect("write");
                stream.flush().expect("flush");
                spin()
            }
            (_, "/grow") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            _ => respond(out, 404, &[], b"not found\n"),
        }
    }
}

fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let body = request.consume().expect("request body consumed once");
    let mut data = Vec::new();
    {
        let mut stream = body.stream().expect("body stream");
        stream.read_to_end(&mut data).expect("read request body");
    }
    drop(body);
    data
}

fn respond(out: ResponseOutparam, status: u16, headers: &[(&str, &[u8])], body: &[u8]) {
    let list: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect();
    let fields = Fields::from_list(&list).expect("valid headers");
    let response = OutgoingResponse::new(fields);
    response.set_status_code(status).expect("valid status");
    let outgoing = response.body().expect("body");
    // Headers go out now; the body streams after.
    ResponseOutparam::set(out, Ok(response));
    {
        let mut stream = outgoing.write().expect("stream");
        stream.write_all(body).expect("write body");
        stream.flush().expect("flush body");
    }
    OutgoingBody::finish(outgoing, None).expect("finish body");
}
