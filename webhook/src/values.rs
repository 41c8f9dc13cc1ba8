//! Parsers for the values that appear both as webhook settings and as per-pod annotations.
//!
//! Each returns the value normalised the way it is written into the sidecar's env, or a
//! message that says what was wrong and what is accepted (the caller adds the setting's name).
//! The sidecar's own settings are checked with the sidecar's parsers (the shared
//! `tcp-sniffer-settings` table, the same code the engine validates with), so the sidecar
//! never receives a value it would refuse at start; `tests/settings_table.rs` checks that on
//! the env of injected pods.

use tcp_sniffer_settings::table::{self, Setting};
use tcp_sniffer_settings::value::{self as shared, effective_list, NameKind, RawValue};
use tcp_sniffer_settings::Surface;

pub use tcp_sniffer_settings::value::url_label;
pub use tcp_sniffer_settings::value::DEFAULT_REDACT_HEADERS;

/// `row`'s parser on text, as the sidecar reads it from its env.
fn sidecar_parse(row: &Setting, v: &str) -> Result<serde_json::Value, String> {
    row.parse(&RawValue::Text(v.to_string()))
}

/// `PORTS`: 1–65535, comma-separated, no duplicates, at least one, order kept; or `any`
/// (every TCP port, HTTP recognised by content), given as an empty list.
pub fn ports(v: &str) -> Result<Vec<u16>, String> {
    match shared::port_spec(&RawValue::Text(v.to_string()))? {
        shared::PortSpec::Any => Ok(Vec::new()),
        shared::PortSpec::List(p) => Ok(p),
    }
}

/// Ports as the sidecar's `PORTS` env value (`any` for an empty list, see [`ports`]).
pub fn ports_env(ports: &[u16]) -> String {
    if ports.is_empty() {
        return shared::ANY_PORT.to_string();
    }
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `INTERFACE`: `any` or a Linux interface name (1–15 bytes, no `/`, `:` or whitespace, not
/// `.` or `..`).
pub fn interface(v: &str) -> Result<String, String> {
    shared::interface(v.trim())
}

/// `OUTPUT_URL`: an absolute `https://` URL with a host, or `http://` to a loopback host (the
/// sidecar refuses other cleartext URLs, so injecting one would only crash-loop it). Errors
/// never quote the value: it may hold credentials (userinfo, a token in the query).
pub fn output_url(v: &str) -> Result<String, String> {
    let v = v.trim();
    shared::url_parts(v)?;
    // The sidecar's own rule (its env surface; the webhook never injects
    // ALLOW_INSECURE_OUTPUT_URL, so the error does not offer it).
    tcp_sniffer_settings::rules::output_url(Surface::Env, v, None, false, false)
        .map_err(|e| e.reason)?;
    // Stricter than the sidecar on purpose: a URL the HTTP client could not parse would only
    // fail at the first POST.
    v.parse::<http::Uri>().map_err(|_| {
        format!(
            "{} is not accepted; expected an https:// URL with a host (http:// only to a loopback host)",
            url_label(v)
        )
    })?;
    Ok(v.to_string())
}

/// `SAMPLE_RATE`: a number with 0 < rate ≤ 1, written back in its shortest form.
pub fn sample_rate(v: &str) -> Result<String, String> {
    let r = sidecar_parse(&table::SAMPLE_RATE, v)?;
    Ok(format!("{}", r.as_f64().unwrap_or(1.0)))
}

/// `MAX_BODY_SIZE`: bytes, an integer from 0 to 16 MiB.
pub fn max_body_size(v: &str) -> Result<u64, String> {
    Ok(sidecar_parse(&table::MAX_BODY_SIZE, v)?
        .as_u64()
        .unwrap_or_default())
}

/// `REDACT_HEADERS` for a pod that names `v`: the defaults plus these names, lower-cased and
/// without duplicates (the same value whether the sidecar adds its list to its defaults or
/// replaces them). `none` (dropping the defaults) is not accepted per pod.
pub fn redact_headers(v: &str) -> Result<String, String> {
    let names = shared::name_list(&RawValue::Text(v.to_string()), NameKind::Header)?;
    match names.first().map(String::as_str) {
        None => Err("expected comma-separated header names, got none".into()),
        Some("none") => Err("\"none\" (dropping the default redactions) is not accepted per pod; list headers to add".into()),
        Some(_) => Ok(effective_list(DEFAULT_REDACT_HEADERS, &names).join(",")),
    }
}

/// The `log-bodies` annotation (→ `STDOUT_BODIES`): only `"true"` or `"false"` (any case),
/// a subset of what the sidecar accepts.
pub fn log_bodies(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        t @ ("true" | "false") => shared::boolean(&RawValue::Text(t.into())),
        other => Err(format!(
            "{other:?} is not accepted; expected \"true\" or \"false\""
        )),
    }
}

/// `LOG_LEVEL`: `error`, `warn`, `info` or `debug` (any case), written in lower case.
pub fn log_level(v: &str) -> Result<String, String> {
    Ok(sidecar_parse(&table::LOG_LEVEL, v)?
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// A Kubernetes resource quantity in its canonical-ish forms: a decimal number followed by
/// nothing, a decimal SI suffix (`m`, `k`, `M`, `G`, `T`, `P`, `E`), a binary suffix
/// (`Ki` … `Ei`) or a decimal exponent (`e3`, `E-2`).
pub fn is_quantity(v: &str) -> bool {
    let b = v.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let start = i;
    let mut dots = 0;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        dots += usize::from(b[i] == b'.');
        i += 1;
    }
    let number = &v[start..i];
    if number.is_empty() || dots > 1 || number == "." {
        return false;
    }
    let suffix = &v[i..];
    match suffix {
        "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            true
        }
        s if s.starts_with(['e', 'E']) => {
            let e = &s[1..];
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
        }
        _ => false,
    }
}

/// A lower-case RFC 1123 subdomain (Secret names).
pub fn is_dns1123_subdomain(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// A key inside a Secret's data.
pub fn is_secret_key(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 253
        && v != "."
        && v != ".."
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

// --- Added for the per-pod output, CA-bundle and resource annotations. ---

/// `OUTPUT_FORMAT`: `json` or `otlp`, lower-cased (the table's row and parser).
pub fn output_format(v: &str) -> Result<String, String> {
    Ok(sidecar_parse(&table::OUTPUT_FORMAT, v.trim())?
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// `OUTPUT_BATCH_SIZE`: messages per POST (the table's row and parser).
pub fn output_batch_size(v: &str) -> Result<u32, String> {
    let n = sidecar_parse(&table::OUTPUT_BATCH_SIZE, v)?;
    Ok(n.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(1))
}

/// The table's rules between settings (`tcp_sniffer_settings::rules`) on the env the
/// sidecar will get, given as `(env var, value)` pairs already checked one by one: `Err`
/// with the sidecar's own message when it would refuse the combination.
pub fn sidecar_rules(env: &[(&str, Option<&str>)]) -> Result<(), String> {
    let mut given = serde_json::Map::new();
    for (name, value) in env {
        let (Some(row), Some(v)) = (table::by_env(name), value) else {
            continue;
        };
        given.insert(row.key.to_string(), sidecar_parse(row, v)?);
    }
    tcp_sniffer_settings::rules::check(shared::Surface::Env, &given).map_err(|e| e.to_string())
}

/// A TCP port 1–65535.
pub fn port(v: &str) -> Result<u16, String> {
    let t = v.trim();
    match t.parse::<u16>() {
        Ok(p) if p >= 1 => Ok(p),
        _ => Err(format!("{t:?} is not a port; expected 1-65535")),
    }
}

/// A ConfigMap holding PEM CA certificates: `NAME` (key `ca.crt`) or `NAME/KEY`, in the pod's
/// namespace. Returns (name, key).
pub fn configmap_ref(v: &str) -> Result<(String, String), String> {
    let t = v.trim();
    let (name, key) = t.split_once('/').unwrap_or((t, "ca.crt"));
    if !is_dns1123_subdomain(name) {
        return Err(format!(
            "{name:?} is not a ConfigMap name (lower-case DNS-1123 subdomain); expected NAME or NAME/KEY"
        ));
    }
    if !is_secret_key(key) {
        return Err(format!(
            "{key:?} is not a ConfigMap key (letters, digits, '-', '_', '.')"
        ));
    }
    Ok((name.to_string(), key.to_string()))
}

/// A resource quantity the sidecar can be given: [`is_quantity`], not negative, not zero.
pub fn positive_quantity(v: &str) -> Result<String, String> {
    let t = v.trim();
    match quantity_nanos(t) {
        Some(n) if n > 0 => Ok(t.to_string()),
        _ => Err(format!(
            "{t:?} is not accepted; expected a positive Kubernetes quantity, e.g. 100m, 0.5, 64Mi, 1G"
        )),
    }
}

/// The value of a quantity in billionths of its unit (rounded up, as Kubernetes rounds), to
/// compare a request with a limit exactly (`0.1` = `100m`, `1Gi` = `1073741824`). `None`: not
/// a quantity, negative, or absurdly large.
pub fn quantity_nanos(v: &str) -> Option<u128> {
    if !is_quantity(v) || v.starts_with('-') {
        return None;
    }
    let v = v.strip_prefix('+').unwrap_or(v);
    let end = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, suffix) = v.split_at(end);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits: u128 = format!("{int}{frac}").parse().ok()?;
    let (pow10, pow2): (i64, u32) = match suffix {
        "" => (0, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        e => (e[1..].parse::<i64>().ok()?, 0),
    };
    let base = digits.checked_mul(1u128.checked_shl(pow2)?)?;
    let exp = 9 + pow10 - frac.len() as i64;
    if exp >= 0 {
        base.checked_mul(10u128.checked_pow(u32::try_from(exp).ok()?)?)
    } else {
        let Some(div) = 10u128.checked_pow(u32::try_from(-exp).ok()?) else {
            return Some(u128::from(base > 0));
        };
        Some(base.div_ceil(div))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_rules() {
        assert_eq!(ports("8080").unwrap(), vec![8080]);
        assert_eq!(ports(" 80, 8080 ,443").unwrap(), vec![80, 8080, 443]);
        assert_eq!(ports("1,65535").unwrap(), vec![1, 65535]);
        for bad in [
            "",
            ",",
            "0",
            "65536",
            "http",
            "80,80",
            "-1",
            "8080;9090",
            "1e3",
        ] {
            assert!(ports(bad).is_err(), "{bad:?}");
        }
        assert_eq!(ports_env(&[80, 8080]), "80,8080");
        assert_eq!(ports("ANY").unwrap(), Vec::<u16>::new());
        assert_eq!(ports_env(&ports("any").unwrap()), "any");
        assert!(ports("any,80").is_err());
    }

    #[test]
    fn interface_rules() {
        // The shared parser (tested with the table); here only that the webhook trims.
        assert_eq!(interface(" eth0 ").unwrap(), "eth0");
        assert!(interface("eth0:1").is_err());
    }

    #[test]
    fn url_rules() {
        for ok in [
            "https://collector:8080/in",
            "https://x.example",
            "http://127.0.0.1:9/",
            "http://localhost:9/",
            "http://[::1]:9/",
        ] {
            assert_eq!(output_url(ok).unwrap(), ok);
        }
        for bad in [
            "",
            "collector:8080",
            "ftp://x/",
            "http://",
            "https:///path",
            "http://a b/",
            "/rel",
            "http://collector:8080/in",
        ] {
            assert!(output_url(bad).is_err(), "{bad:?}");
        }
        // The sidecar would refuse it: say so, without the URL's credentials.
        let e = output_url("http://user:pw-secret@collector:8080/in?k=qs-secret").unwrap_err();
        assert_eq!(
            e,
            "http://collector:8080 is plain http to a host that is not loopback, which sends the captured traffic and the token in clear (the sidecar refuses it); use https://"
        );
        for bad in [
            "http://user:pw-secret@collector:8080/in?k=qs-secret",
            "ftp://user:pw-secret@x/?qs-secret",
            "user:pw-secret@x?qs-secret",
        ] {
            let e = output_url(bad).unwrap_err();
            assert!(!e.contains("pw-secret") && !e.contains("qs-secret"), "{e}");
        }
    }

    #[test]
    fn sample_rate_rules() {
        assert_eq!(sample_rate("1").unwrap(), "1");
        assert_eq!(sample_rate("0.50").unwrap(), "0.5");
        assert_eq!(sample_rate(" 1.0 ").unwrap(), "1");
        for bad in ["0", "-0.1", "1.01", "NaN", "inf", "", "half"] {
            assert!(sample_rate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn body_size_rules() {
        assert_eq!(max_body_size("0").unwrap(), 0);
        assert_eq!(max_body_size("1048576").unwrap(), 1048576);
        for bad in ["-1", "1.5", "", "64k"] {
            assert!(max_body_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quantities() {
        for ok in [
            "100m", "0.5", "1", "64Mi", "1Gi", "2G", "1e3", "1.5E-2", "500k",
        ] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "m", "1.2.3", "64MB", "lots", "1e", "Mi", "."] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(is_dns1123_subdomain("sniffer-token"));
        assert!(is_dns1123_subdomain("a.b-c.d"));
        assert!(!is_dns1123_subdomain("Bad"));
        assert!(!is_dns1123_subdomain("-x"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(is_secret_key("token"));
        assert!(is_secret_key("auth_token.txt"));
        assert!(!is_secret_key("a/b"));
        assert!(!is_secret_key(".."));
    }

    #[test]
    fn output_and_resource_values() {
        assert_eq!(output_format(" OTLP ").unwrap(), "otlp");
        assert!(output_format("protobuf").is_err());
        assert_eq!(output_batch_size("100").unwrap(), 100);
        for bad in ["0", "10001", "-1", "1.5", ""] {
            assert!(output_batch_size(bad).is_err(), "{bad:?}");
        }
        assert_eq!(port("9464").unwrap(), 9464);
        assert!(port("0").is_err() && port("65536").is_err());
        assert_eq!(
            configmap_ref("corp-ca").unwrap(),
            ("corp-ca".into(), "ca.crt".into())
        );
        assert_eq!(
            configmap_ref("corp-ca/bundle.pem").unwrap(),
            ("corp-ca".into(), "bundle.pem".into())
        );
        for bad in ["", "Corp", "a/b/c", "a/", "/k"] {
            assert!(configmap_ref(bad).is_err(), "{bad:?}");
        }
        assert_eq!(quantity_nanos("100m"), quantity_nanos("0.1"));
        assert_eq!(quantity_nanos("1Gi"), quantity_nanos("1073741824"));
        assert_eq!(quantity_nanos("1.5E-2"), quantity_nanos("15m"));
        assert!(quantity_nanos("64Mi") > quantity_nanos("64M"));
        assert!(quantity_nanos("500m") < quantity_nanos("1"));
        assert_eq!(quantity_nanos("1n"), None);
        assert_eq!(quantity_nanos("-1"), None);
        assert_eq!(quantity_nanos("1e99"), None);
        for bad in ["0", "0m", "-100m", "64MB", ""] {
            assert!(positive_quantity(bad).is_err(), "{bad:?}");
        }
        assert_eq!(positive_quantity(" 64Mi ").unwrap(), "64Mi");
    }
}
