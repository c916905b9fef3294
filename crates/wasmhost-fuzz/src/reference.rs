//! Store references: `sha256:<hex>`, `name[:tag]`, and OCI references
//! `[oci://]REGISTRY/REPOSITORY[:TAG|@sha256:…]`.
//!
//! Invariants: a refused reference is `bad_input`; an accepted one prints
//! back to text that parses to the same reference; a name never holds a
//! path that could leave the store's directory (`..`, a leading `/`, `\`,
//! `//`); an OCI reference's local name is itself a valid reference.

use wasmhost::ErrorCode;
use wasmhost_store::Reference;
use wasmhost_store::oci::OciReference;

use crate::expect_code;

/// Both parsers, on the same text.
pub fn references(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<Reference>() {
        Ok(r) => {
            let printed = r.to_string();
            let again: Reference = printed
                .parse()
                .unwrap_or_else(|e| panic!("`{printed}` (printed from `{text}`) is refused: {e}"));
            assert_eq!(again, r, "`{text}` does not round-trip through `{printed}`");
            if let Reference::Name { name, tag } = &r {
                assert!(
                    !name.contains("..")
                        && !name.starts_with('/')
                        && !name.contains('\\')
                        && !name.contains("//")
                        && !tag.contains('/'),
                    "`{text}` names a path outside the store: {name}:{tag}"
                );
            }
        }
        Err(e) => expect_code("reference", &e, &[ErrorCode::BadInput]),
    }
    let _ = OciReference::looks_like(text);
    match text.parse::<OciReference>() {
        Ok(r) => {
            let printed = r.to_string();
            let again: OciReference = printed
                .parse()
                .unwrap_or_else(|e| panic!("`{printed}` (printed from `{text}`) is refused: {e}"));
            assert_eq!(again, r, "`{text}` does not round-trip through `{printed}`");
            let _ = (r.registry(), r.repository(), r.tag(), r.digest());
            if let Err(e) = r.local_name() {
                expect_code("oci local name", &e, &[ErrorCode::BadInput]);
            }
        }
        Err(e) => expect_code("oci reference", &e, &[ErrorCode::BadInput]),
    }
}
