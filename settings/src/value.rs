//! Value parsers: one per [`Kind`], shared by every surface and by the webhook.
//!
//! [`parse`] turns a raw value (text from env or the command line, JSON from the library) into
//! its normalised JSON form, or a reason that says what is wrong and what is accepted (the
//! caller adds the setting's name). Normalised forms: [`Kind::Int`] a JSON integer,
//! [`Kind::Fraction`] a number, [`Kind::Bool`] a boolean, [`Kind::Ports`] an array of
//! integers or the string [`ANY_PORT`], [`Kind::Names`] an array of lower-cased names (`"none"` only first),
//! [`Kind::Choice`] the lower-cased word, the rest strings; an empty [`Kind::Url`] or
//! [`Kind::Secret`] is `null` (unset).
//!
//! Credentials are never echoed: errors about a [`Kind::Url`] show at most
//! `scheme://host[:port]` ([`url_label`]), errors about a [`Kind::Secret`] nothing of it.

use serde_json::Value;

use crate::table::Kind;

/// Which surface a value came from; decides how a setting is named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// `createSniffer({...})` keys, e.g. `maxBodySize`.
    Library,
    /// Environment variables, e.g. `MAX_BODY_SIZE`.
    Env,
    /// Command-line flags, e.g. `--max-body-size`.
    Cli,
}

/// A setting's value before validation.
#[derive(Clone, Debug)]
pub enum RawValue {
    /// From env or the command line: always text.
    Text(String),
    /// From the library: a JSON value (numbers, booleans, arrays are typed).
    Json(Value),
}

/// What a name list holds (decides which names are valid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// HTTP header names (RFC 9110 tokens).
    Header,
    /// Query parameter names (no `&`, `=`, `#` or control characters, at most 256 bytes).
    QueryParam,
    /// JSON keys and form fields (no control characters, at most 256 bytes).
    BodyField,
}

impl NameKind {
    /// The plural noun used in messages and docs.
    pub fn what(self) -> &'static str {
        match self {
            NameKind::Header => "header names",
            NameKind::QueryParam => "query parameter names",
            NameKind::BodyField => "field names",
        }
    }

    /// Whether `n` is a valid name of this kind.
    pub fn is_valid(self, n: &str) -> bool {
        match self {
            NameKind::Header => !n.is_empty() && n.bytes().all(is_token_byte),
            NameKind::QueryParam => {
                n.len() <= 256 && !n.chars().any(|c| c.is_control() || "&=#".contains(c))
            }
            NameKind::BodyField => n.len() <= 256 && !n.chars().any(char::is_control),
        }
    }
}

/// Headers redacted by default (`redactHeaders` adds to these).
pub const DEFAULT_REDACT_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
];

/// Query parameters redacted by default (`redactQueryParams` adds to these).
pub const DEFAULT_REDACT_QUERY_PARAMS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "api_key",
    "apikey",
    "password",
    "passwd",
    "secret",
    "client_secret",
    "signature",
    "sig",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
];

/// JSON keys and form fields redacted by default (`redactBodyFields` adds to these).
pub const DEFAULT_REDACT_BODY_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "api_key",
    "apikey",
    "credit_card",
    "card_number",
    "cvv",
    "ssn",
];

/// The list in effect for a setting: `defaults` followed by `given` (lower-cased, without
/// duplicates); when the first entry of `given` is `none` (any case), only the entries after it.
pub fn effective_list(defaults: &[&str], given: &[String]) -> Vec<String> {
    let (base, extra): (&[&str], &[String]) = match given.first() {
        Some(first) if first.eq_ignore_ascii_case("none") => (&[], &given[1..]),
        _ => (defaults, given),
    };
    let mut out: Vec<String> = Vec::with_capacity(base.len() + extra.len());
    for n in base
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .chain(extra.iter().map(|s| s.to_ascii_lowercase()))
    {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// Parses `v` as `kind` into its normalised JSON form (see the module doc).
pub fn parse(kind: Kind, v: &RawValue) -> Result<Value, String> {
    match kind {
        Kind::Interface => interface(&text(v)?).map(Value::from),
        Kind::Ports => match port_spec(v)? {
            PortSpec::Any => Ok(Value::from(ANY_PORT)),
            PortSpec::List(p) => Ok(Value::from(p)),
        },
        Kind::Url => {
            // Never echo the value: it may hold credentials.
            let t = text(v).map_err(|_| "expected a URL string".to_string())?;
            if t.is_empty() {
                return Ok(Value::Null);
            }
            url_parts(&t)?;
            Ok(Value::String(t))
        }
        Kind::Secret => {
            let t = text(v).map_err(|_| "expected a string".to_string())?;
            if t.contains(['\r', '\n']) {
                return Err("must not contain line breaks".into());
            }
            Ok(if t.is_empty() {
                Value::Null
            } else {
                Value::String(t)
            })
        }
        Kind::Bool => boolean(v).map(Value::Bool),
        Kind::Fraction => {
            let r = number(v)?;
            if r > 0.0 && r <= 1.0 {
                Ok(Value::from(r))
            } else {
                Err(format!("expected a number with 0 < rate <= 1, got {r}"))
            }
        }
        Kind::Int { min, max } => integer(v, min, max).map(Value::from),
        Kind::Choice(choices) => {
            let t = text(v)?;
            let lower = t.to_ascii_lowercase();
            match choices.iter().find(|c| **c == lower) {
                Some(c) => Ok(Value::from(*c)),
                None => Err(format!(
                    "expected one of {}, got {t:?}",
                    choices
                        .iter()
                        .map(|c| format!("{c:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        Kind::Names(kind) => name_list(v, kind).map(Value::from),
        Kind::HostPort => host_port(&text(v)?).map(|a| a.map_or(Value::Null, Value::String)),
        Kind::Path => {
            let t = text(v)?;
            if t.is_empty() {
                return Err("expected a path to a pcap or pcapng file".into());
            }
            Ok(Value::String(t))
        }
    }
}

/// The value as text: trimmed when it came as text, as given when it is a JSON string.
fn text(v: &RawValue) -> Result<String, String> {
    match v {
        RawValue::Text(t) => Ok(t.trim().to_string()),
        RawValue::Json(Value::String(t)) => Ok(t.clone()),
        RawValue::Json(other) => Err(format!("expected a string, got {other}")),
    }
}

/// A boolean: JSON `true`/`false`, or the text `true`/`false`/`1`/`0`/`yes`/`no` (any case).
pub fn boolean(v: &RawValue) -> Result<bool, String> {
    match v {
        RawValue::Json(Value::Bool(b)) => Ok(*b),
        RawValue::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            other => Err(format!("expected true or false, got {other:?}")),
        },
        RawValue::Json(other) => Err(format!("expected a boolean, got {other}")),
    }
}

fn number(v: &RawValue) -> Result<f64, String> {
    match v {
        RawValue::Json(Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| format!("expected a number, got {n}")),
        RawValue::Text(t) => t
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| format!("expected a number, got {t:?}")),
        RawValue::Json(other) => Err(format!("expected a number, got {other}")),
    }
}

/// Describes an integer range the way errors and docs say it.
pub fn int_range(min: u64, max: u64) -> String {
    if max >= u32::MAX as u64 {
        format!("an integer >= {min}")
    } else {
        format!("an integer from {min} to {max}")
    }
}

fn integer(v: &RawValue, min: u64, max: u64) -> Result<u64, String> {
    let n = match v {
        RawValue::Json(Value::Number(n)) => n.as_u64(),
        RawValue::Text(t) => t.trim().parse::<u64>().ok(),
        RawValue::Json(_) => None,
    };
    let shown = match v {
        RawValue::Text(t) => format!("{t:?}"),
        RawValue::Json(j) => j.to_string(),
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected {}, got {shown}", int_range(min, max))),
    }
}

/// `HOST:PORT` (host a name, an IPv4 address or a bracketed IPv6 address; port 0 lets the
/// system pick), or `off`/empty for none.
pub fn host_port(v: &str) -> Result<Option<String>, String> {
    let v = v.trim();
    if v.is_empty() || v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let bad = || {
        format!(
            "expected HOST:PORT (e.g. 0.0.0.0:9464, 127.0.0.1:9464, [::]:9464) or \"off\", got {v:?}"
        )
    };
    if v.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(Some(v.to_string()));
    }
    let (host, port) = v.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !host_ok {
        return Err(bad());
    }
    Ok(Some(v.to_string()))
}

/// An interface name as Linux accepts it (`dev_valid_name`: 1–15 bytes, not `.` or `..`, no
/// `/`, `:` or whitespace), or `any`.
pub fn interface(v: &str) -> Result<String, String> {
    let ok = !v.is_empty()
        && v.len() <= 15
        && v != "."
        && v != ".."
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!(
            "expected an interface name (1-15 characters, no '/', ':' or spaces) or \"any\", got {v:?}"
        ))
    }
}

/// The `ports` value that means every TCP port (HTTP recognised by content).
pub const ANY_PORT: &str = "any";

/// What `ports` says: every TCP port, or a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSpec {
    /// `any`: HTTP is recognised by content on every TCP port.
    Any,
    /// These server ports only (see [`ports`]).
    List(Vec<u16>),
}

/// `ports`: `any` (any case, alone; also `["any"]` from the library), or a list as [`ports`]
/// accepts it. `any` mixed with port numbers is refused: it would be ambiguous which was meant.
pub fn port_spec(v: &RawValue) -> Result<PortSpec, String> {
    let is_any = |t: &str| t.trim().eq_ignore_ascii_case(ANY_PORT);
    let any = match v {
        RawValue::Text(t) | RawValue::Json(Value::String(t)) => is_any(t),
        RawValue::Json(Value::Array(a)) => a.len() == 1 && a[0].as_str().is_some_and(is_any),
        _ => false,
    };
    if any {
        return Ok(PortSpec::Any);
    }
    ports(v).map(PortSpec::List).map_err(|e| {
        let mentions_any = match v {
            RawValue::Text(t) | RawValue::Json(Value::String(t)) => t.split(',').any(is_any),
            RawValue::Json(Value::Array(a)) => a.iter().any(|x| x.as_str().is_some_and(is_any)),
            _ => false,
        };
        if mentions_any {
            "\"any\" must stand alone (it already means every port), not in a list of ports".into()
        } else {
            e
        }
    })
}

/// TCP ports: 1–65535, comma-separated in text, no duplicates, at least one. Order is kept.
/// (`any` is not a list: see [`port_spec`].)
pub fn ports(v: &RawValue) -> Result<Vec<u16>, String> {
    let items: Vec<RawValue> = match v {
        RawValue::Text(t) => t
            .split(',')
            .map(|p| RawValue::Text(p.trim().to_string()))
            .collect(),
        RawValue::Json(Value::Array(a)) => a.iter().cloned().map(RawValue::Json).collect(),
        RawValue::Json(n @ Value::Number(_)) => vec![RawValue::Json(n.clone())],
        RawValue::Json(Value::String(t)) => return ports(&RawValue::Text(t.clone())),
        RawValue::Json(other) => return Err(format!("expected an array of ports, got {other}")),
    };
    let mut ports = Vec::with_capacity(items.len());
    for item in &items {
        let p =
            integer(item, 1, 65_535).map_err(|e| format!("each port must be 1-65535: {e}"))? as u16;
        if ports.contains(&p) {
            return Err(format!("port {p} is listed twice"));
        }
        ports.push(p);
    }
    if ports.is_empty() {
        return Err("at least one port is required".into());
    }
    Ok(ports)
}

/// A comma-separated list (or a JSON array) of names, trimmed, lower-cased, without
/// duplicates; `none` may only come first (it drops the defaults, see [`effective_list`]).
pub fn name_list(v: &RawValue, kind: NameKind) -> Result<Vec<String>, String> {
    let what = kind.what();
    let names: Vec<String> = match v {
        RawValue::Text(t) => t.split(',').map(|s| s.trim().to_string()).collect(),
        RawValue::Json(Value::String(t)) => t.split(',').map(|s| s.trim().to_string()).collect(),
        RawValue::Json(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.trim().to_string()),
                other => Err(format!("expected {what} as strings, got {other}")),
            })
            .collect::<Result<_, _>>()?,
        RawValue::Json(other) => return Err(format!("expected an array of {what}, got {other}")),
    };
    let mut out: Vec<String> = Vec::new();
    for n in names.into_iter().filter(|n| !n.is_empty()) {
        if n.eq_ignore_ascii_case("none") {
            if !out.is_empty() {
                return Err(format!(
                    "\"none\" (drop the default list) must be the first entry, got it after {:?}",
                    out.last().map(String::as_str).unwrap_or_default()
                ));
            }
            out.push("none".into());
            continue;
        }
        if !kind.is_valid(&n) {
            let single = &what[..what.len() - 1];
            return Err(format!("{n:?} is not a valid {single}"));
        }
        let n = n.to_ascii_lowercase();
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Scheme (lower-cased) and host of an absolute `http`/`https` URL (the host without brackets
/// or port). Errors never quote the URL: it may hold credentials.
pub fn url_parts(url: &str) -> Result<(String, &str), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "expected an http:// or https:// URL".to_string())?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        let shown: String = scheme.chars().take(16).collect();
        return Err(format!(
            "expected an http:// or https:// URL, got scheme {shown:?}"
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{} contains whitespace or control characters",
            url_label(url)
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(stripped) = host_port.strip_prefix('[') {
        stripped.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    if host.is_empty() {
        return Err("the URL has no host".to_string());
    }
    Ok((scheme, host))
}

/// `http://` to a host that is not loopback: captured traffic and the token would cross the
/// network in clear. False for anything that is not an `http`/`https` URL.
pub fn url_is_insecure(url: &str) -> bool {
    url_parts(url).is_ok_and(|(scheme, host)| scheme == "http" && !is_loopback_host(host))
}

/// `scheme://host[:port]` of a URL: what logs and errors may show of it (never the
/// userinfo, path, query or fragment, which can hold credentials).
pub fn url_label(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let scheme: String = scheme.chars().take(16).collect();
    format!("{scheme}://{host}")
}

/// `localhost` or a loopback address.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(kind: Kind, s: &str) -> Result<Value, String> {
        parse(kind, &RawValue::Text(s.into()))
    }

    #[test]
    fn ints_and_fractions() {
        let k = Kind::Int { min: 1, max: 10 };
        assert_eq!(t(k, " 5 ").unwrap(), json!(5));
        assert_eq!(
            t(k, "0").unwrap_err(),
            "expected an integer from 1 to 10, got \"0\""
        );
        assert_eq!(
            parse(k, &RawValue::Json(json!(1.5))).unwrap_err(),
            "expected an integer from 1 to 10, got 1.5"
        );
        assert_eq!(t(Kind::Fraction, "0.5").unwrap(), json!(0.5));
        for bad in ["0", "1.01", "NaN", "inf", "", "half", "-0.1"] {
            assert!(t(Kind::Fraction, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn interfaces_follow_the_kernel_rule() {
        for ok in ["any", "eth0", "lo", "veth1234567890a", "br-1.2"] {
            assert_eq!(interface(ok).unwrap(), ok);
        }
        for bad in [
            "",
            "a/b",
            "eth0:1",
            "has space",
            "0123456789abcdef",
            ".",
            "..",
        ] {
            assert!(interface(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ports_and_names() {
        assert_eq!(t(Kind::Ports, "80, 8080").unwrap(), json!([80, 8080]));
        for bad in [
            "", "0", "65536", "80,80", "80,,81", "1e3", "http", "anyport",
        ] {
            assert!(t(Kind::Ports, bad).is_err(), "{bad}");
        }
        for any in ["any", " ANY ", "Any"] {
            assert_eq!(t(Kind::Ports, any).unwrap(), json!("any"), "{any}");
        }
        let from_js = |v: Value| parse(Kind::Ports, &RawValue::Json(v));
        assert_eq!(from_js(json!("any")).unwrap(), json!("any"));
        assert_eq!(from_js(json!(["any"])).unwrap(), json!("any"));
        for mixed in [json!("any,80"), json!(["any", 80]), json!([80, "any"])] {
            let e = from_js(mixed.clone()).unwrap_err();
            assert!(e.contains("must stand alone"), "{mixed}: {e}");
        }
        let h = Kind::Names(NameKind::Header);
        assert_eq!(t(h, "X-A, x-a ,B").unwrap(), json!(["x-a", "b"]));
        assert_eq!(t(h, "none,x").unwrap(), json!(["none", "x"]));
        assert!(t(h, "x,none").unwrap_err().contains("first entry"));
        assert!(t(h, "bad header").is_err());
        assert_eq!(
            effective_list(&["a", "b"], &["B".into(), "c".into()]),
            ["a", "b", "c"]
        );
        assert_eq!(effective_list(&["a"], &["none".into(), "c".into()]), ["c"]);
    }

    #[test]
    fn choices_are_case_insensitive() {
        let k = Kind::Choice(&["auto", "pcap"]);
        assert_eq!(t(k, "PCAP").unwrap(), json!("pcap"));
        assert_eq!(
            t(k, "pf_ring").unwrap_err(),
            "expected one of \"auto\", \"pcap\", got \"pf_ring\""
        );
    }

    #[test]
    fn urls_and_secrets_are_never_echoed() {
        assert_eq!(t(Kind::Url, "").unwrap(), Value::Null);
        assert_eq!(t(Kind::Secret, "").unwrap(), Value::Null);
        for bad in [
            "ftp://user:pw-secret@x/?qs-secret",
            "user:pw-secret@x?qs-secret",
            "http://user:pw-secret@/x?qs-secret",
            "http://user:pw-secret@a b/?qs-secret",
        ] {
            let e = t(Kind::Url, bad).unwrap_err();
            assert!(!e.contains("pw-secret") && !e.contains("qs-secret"), "{e}");
        }
        let e = t(Kind::Secret, "tok\nen").unwrap_err();
        assert!(!e.contains("tok"), "{e}");
        assert!(url_is_insecure("http://collector:8080/x"));
        for ok in [
            "https://c/x",
            "http://127.0.0.1/",
            "http://[::1]:9/",
            "HTTP://LOCALHOST/",
        ] {
            assert!(!url_is_insecure(ok), "{ok}");
        }
    }
}
