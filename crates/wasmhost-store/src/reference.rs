//! References to stored modules: `sha256:<64 hex digits>` or `name[:tag]`,
//! with the naming rules for names and tags (see [`Reference`]).

use std::fmt;
use std::str::FromStr;

use wasmhost::{Digest, Error, Result};

/// Longest name or tag, in characters.
const MAX_LEN: usize = 128;

/// A stored module, by content digest or by `name:tag`.
///
/// A [`Reference`] names a module in a [`crate::ModuleStore`] either by its
/// content ([`Reference::Digest`]) or by a mutable `name:tag` pointer
/// ([`Reference::Name`]); a name without a tag means the tag
/// [`Reference::DEFAULT_TAG`] (`latest`).
///
/// The rules (checked by [`Reference::check_name`] and
/// [`Reference::check_tag`]):
///
/// * a **name** is 1–128 characters of `[a-z0-9._/-]`, starts with
///   `[a-z0-9]`, contains no `..` and no `//`, does not end with `/`, has no
///   `/`-separated segment that is `.` or ends in `.json` (such segments
///   would collide with the store's own layout), and is not `sha256`
///   (reserved for digests);
/// * a **tag** is 1–128 characters of `[A-Za-z0-9._-]` and starts with a
///   letter, a digit or `_`.
///
/// ```
/// use wasmhost_store::Reference;
/// let r: Reference = "tools/fmt".parse()?;
/// assert_eq!(r.to_string(), "tools/fmt:latest");
/// let r: Reference = "tools/fmt:v1.2".parse()?;
/// assert!(matches!(r, Reference::Name { ref tag, .. } if tag == "v1.2"));
/// let d = format!("sha256:{}", "ab".repeat(32));
/// assert!(matches!(d.parse::<Reference>()?, Reference::Digest(_)));
/// assert!("Tools".parse::<Reference>().is_err());
/// # Ok::<(), wasmhost::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reference {
    /// The module whose wasm bytes have this sha256.
    Digest(Digest),
    /// Whatever module the tag `tag` of `name` currently points at.
    Name {
        /// The module's name, e.g. `tools/fmt`.
        name: String,
        /// The tag, e.g. `latest` or `v1.2`.
        tag: String,
    },
}

impl Reference {
    /// The tag a name without one refers to: `latest`.
    pub const DEFAULT_TAG: &'static str = "latest";

    /// A `name:tag` reference, after checking both against the rules.
    pub fn named(name: &str, tag: &str) -> Result<Self> {
        Self::check_name(name)?;
        Self::check_tag(tag)?;
        Ok(Reference::Name {
            name: name.to_string(),
            tag: tag.to_string(),
        })
    }

    /// Checks a module name against the naming rules; the error says which
    /// rule was broken.
    pub fn check_name(name: &str) -> Result<()> {
        let bad = |why: &str| {
            Err(Error::bad_input(format!(
                "invalid module name `{}`: {why} (a name is 1-128 characters of \
                 [a-z0-9._/-], starts with [a-z0-9], has no `..` or `//` and does \
                 not end with `/`)",
                name.escape_debug()
            )))
        };
        if name.is_empty() {
            return bad("it is empty");
        }
        if name.chars().count() > MAX_LEN {
            return bad("it is longer than 128 characters");
        }
        if let Some(c) = name
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '/' | '-'))
        {
            return bad(&format!("`{}` is not allowed", c.escape_debug()));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return bad("it must start with a lowercase letter or a digit");
        }
        if name.contains("..") {
            return bad("it contains `..`");
        }
        if name.contains("//") {
            return bad("it contains `//`");
        }
        if name.ends_with('/') {
            return bad("it ends with `/`");
        }
        if name.split('/').any(|segment| segment == ".") {
            return bad("a `/`-separated part of it is `.`");
        }
        if name.split('/').any(|segment| segment.ends_with(".json")) {
            return bad(
                "a `/`-separated part of it ends in `.json`, which the store reserves for tags",
            );
        }
        if name == "sha256" {
            return bad("`sha256` is reserved for digests (sha256:<hex>)");
        }
        Ok(())
    }

    /// Checks a tag against the tag rules; the error says which rule was
    /// broken.
    pub fn check_tag(tag: &str) -> Result<()> {
        let bad = |why: &str| {
            Err(Error::bad_input(format!(
                "invalid tag `{}`: {why} (a tag is 1-128 characters of [A-Za-z0-9._-] \
                 and starts with a letter, a digit or `_`)",
                tag.escape_debug()
            )))
        };
        if tag.is_empty() {
            return bad("it is empty");
        }
        if tag.chars().count() > MAX_LEN {
            return bad("it is longer than 128 characters");
        }
        if let Some(c) = tag
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return bad(&format!("`{}` is not allowed", c.escape_debug()));
        }
        if !tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            return bad("it must start with a letter, a digit or `_`");
        }
        Ok(())
    }
}

impl From<Digest> for Reference {
    fn from(d: Digest) -> Self {
        Reference::Digest(d)
    }
}

impl FromStr for Reference {
    type Err = Error;

    /// Parses `sha256:<64 hex digits>`, `name` (tag `latest`) or `name:tag`.
    fn from_str(s: &str) -> Result<Self> {
        if let Some(hex) = s.strip_prefix("sha256:") {
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(Error::bad_input(format!(
                    "invalid digest reference `{}`: `sha256:` must be followed by \
                     exactly 64 hex digits",
                    s.escape_debug()
                )));
            }
            return Ok(Reference::Digest(s.to_ascii_lowercase().parse()?));
        }
        match s.split_once(':') {
            Some((name, tag)) => Reference::named(name, tag),
            None => Reference::named(s, Self::DEFAULT_TAG),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Digest(d) => d.fmt(f),
            Reference::Name { name, tag } => write!(f, "{name}:{tag}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmhost::ErrorCode;

    fn parse(s: &str) -> Result<Reference> {
        s.parse()
    }

    fn rejected(s: &str) -> String {
        match parse(s) {
            Ok(r) => panic!("`{s}` was accepted as {r:?}"),
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::BadInput, "{s}: {e}");
                e.to_string()
            }
        }
    }

    #[test]
    fn names_and_tags() {
        assert_eq!(
            parse("app").unwrap(),
            Reference::Name {
                name: "app".into(),
                tag: "latest".into()
            }
        );
        assert_eq!(
            parse("org/tools/fmt-2_x.y:V1.0_rc-1").unwrap(),
            Reference::Name {
                name: "org/tools/fmt-2_x.y".into(),
                tag: "V1.0_rc-1".into()
            }
        );
        assert_eq!(parse("0app:_tmp").unwrap().to_string(), "0app:_tmp");
        assert_eq!(parse("a").unwrap().to_string(), "a:latest");
        let longest = "a".repeat(128);
        assert!(parse(&format!("{longest}:{longest}")).is_ok());
    }

    #[test]
    fn digests() {
        let hex = "0123456789abcdef".repeat(4);
        let r = parse(&format!("sha256:{hex}")).unwrap();
        assert_eq!(
            r,
            Reference::Digest(format!("sha256:{hex}").parse().unwrap())
        );
        assert_eq!(r.to_string(), format!("sha256:{hex}"));
        // Upper-case hex is accepted and displayed in lower case.
        let upper = parse(&format!("sha256:{}", hex.to_uppercase())).unwrap();
        assert_eq!(upper, r);
        assert!(rejected("sha256:abc").contains("64 hex digits"));
        assert!(rejected(&format!("sha256:{}", "g".repeat(64))).contains("64 hex digits"));
        assert!(rejected(&format!("sha256:{hex}0")).contains("64 hex digits"));
        // `sha256` cannot be a name: `sha256:v1` would be ambiguous.
        assert!(rejected("sha256").contains("reserved"));
    }

    #[test]
    fn bad_names_say_the_rule() {
        assert!(rejected("").contains("empty"));
        assert!(rejected(":v1").contains("empty"));
        assert!(rejected("App").contains("`A` is not allowed"));
        assert!(rejected("a b").contains("` ` is not allowed"));
        assert!(rejected("é").contains("not allowed"));
        assert!(rejected("-app").contains("must start"));
        assert!(rejected(".app").contains("must start"));
        assert!(rejected("/app").contains("must start"));
        assert!(rejected("a/../b").contains("`..`"));
        assert!(rejected("a..b").contains("`..`"));
        assert!(rejected("a//b").contains("`//`"));
        assert!(rejected("a/").contains("ends with `/`"));
        assert!(rejected("a/./b").contains("`.`"));
        assert!(rejected("a/.").contains("`.`"));
        assert!(rejected("a/v1.json").contains(".json"));
        assert!(rejected(&"a".repeat(129)).contains("longer than 128"));
        assert!(rejected("a\nb").contains("not allowed"));
    }

    #[test]
    fn bad_tags_say_the_rule() {
        assert!(rejected("app:").contains("invalid tag"));
        assert!(rejected("app:").contains("empty"));
        assert!(rejected("app:-x").contains("must start"));
        assert!(rejected("app:.x").contains("must start"));
        assert!(rejected("app:a/b").contains("`/` is not allowed"));
        assert!(rejected("app:a:b").contains("`:` is not allowed"));
        assert!(rejected(&format!("app:{}", "t".repeat(129))).contains("longer than 128"));
    }

    #[test]
    fn named_checks_both() {
        assert!(Reference::named("app", "v1").is_ok());
        assert_eq!(
            Reference::named("App", "v1").unwrap_err().code(),
            ErrorCode::BadInput
        );
        assert_eq!(
            Reference::named("app", "").unwrap_err().code(),
            ErrorCode::BadInput
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "app:latest",
            "org/x.y_z-1:T_1.0-rc",
            &format!("sha256:{}", "f".repeat(64)),
        ] {
            assert_eq!(parse(s).unwrap().to_string(), s);
            assert_eq!(
                parse(&parse(s).unwrap().to_string()).unwrap(),
                parse(s).unwrap()
            );
        }
    }
}
