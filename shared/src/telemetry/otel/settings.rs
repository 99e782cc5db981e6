//! Export's settings, from the variables every OpenTelemetry SDK reads: whether to export,
//! where (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` and
//! `/v1/traces`), with which headers and timeout, under which service name.

use std::time::Duration;

use percent_encoding::percent_decode_str;

/// The variables whose presence turns export on.
pub const EXPORT_VARIABLES: [&str; 3] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
];

/// How long an export may take unless `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` or
/// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds) says otherwise: the SDKs' default.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where spans go when only `OTEL_SERVICE_NAME` is set: a collector on this host (the ADOT
/// layer's, on Lambda), as the SDKs default.
const DEFAULT_ENDPOINT: &str = "http://localhost:4318";

/// The one protocol this exporter speaks.
pub(super) const HTTP_PROTOBUF: &str = "http/protobuf";

/// Export's settings, read from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportConfig {
    /// The `service.name` of every span: `OTEL_SERVICE_NAME`, else the function's name
    /// (`AWS_LAMBDA_FUNCTION_NAME`), else `unknown_service`.
    pub service_name: String,
    /// How long one export may take: `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else
    /// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds), else 10 s.
    pub timeout: Duration,
    /// Where the spans are sent: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it is, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` with `/v1/traces` added, else
    /// `http://localhost:4318/v1/traces`.
    pub endpoint: String,
    /// Headers of every export request (`OTEL_EXPORTER_OTLP_TRACES_HEADERS`, else
    /// `OTEL_EXPORTER_OTLP_HEADERS`: `key=value` pairs separated by commas, values
    /// percent-decoded).
    pub headers: Vec<(String, String)>,
    /// The protocol asked for (`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, else `http/protobuf`): only `http/protobuf` is spoken,
    /// and export refuses to start with another.
    pub protocol: String,
    /// The compression asked for (`OTEL_EXPORTER_OTLP_TRACES_COMPRESSION`, else
    /// `OTEL_EXPORTER_OTLP_COMPRESSION`): none is supported, and export refuses to start
    /// with one (a collector on the same host gains nothing from it).
    pub compression: Option<String>,
}

impl ExportConfig {
    /// The configuration the environment asks for; `None` when export is off.
    pub fn from_env() -> Option<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with the variables read by `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let set = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_string())
                .filter(|value| !value.is_empty())
        };
        // The signal's own variable, else the general one.
        let either = |traces: &str, general: &str| set(traces).or_else(|| set(general));
        if set("OTEL_SDK_DISABLED").is_some_and(|value| value.eq_ignore_ascii_case("true")) {
            return None;
        }
        if !EXPORT_VARIABLES.iter().any(|name| set(name).is_some()) {
            return None;
        }
        let service_name = set("OTEL_SERVICE_NAME")
            .or_else(|| set("AWS_LAMBDA_FUNCTION_NAME"))
            .unwrap_or_else(|| "unknown_service".to_string());
        let timeout = either(
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        )
        .and_then(|millis| millis.parse::<u64>().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
        let endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").unwrap_or_else(|| {
            let base = set("OTEL_EXPORTER_OTLP_ENDPOINT");
            let base = base.as_deref().unwrap_or(DEFAULT_ENDPOINT);
            format!("{}/v1/traces", base.trim_end_matches('/'))
        });
        let headers = either(
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        )
        .map(|list| parse_headers(&list))
        .unwrap_or_default();
        let protocol = either(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        )
        .unwrap_or_else(|| HTTP_PROTOBUF.to_string());
        let compression = either(
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        )
        .filter(|compression| !compression.eq_ignore_ascii_case("none"));
        Some(Self {
            service_name,
            timeout,
            endpoint,
            headers,
            protocol,
            compression,
        })
    }
}

/// `key=value,key=value`, as the OpenTelemetry specification writes headers in a variable:
/// names and values trimmed, values percent-decoded; an entry without `=` or a name is
/// skipped, as the SDKs do.
fn parse_headers(list: &str) -> Vec<(String, String)> {
    list.split(',')
        .filter_map(|entry| {
            let (name, value) = entry.split_once('=')?;
            let name = name.trim();
            if name.is_empty() {
                return None;
            }
            let value = percent_decode_str(value.trim()).decode_utf8_lossy();
            Some((name.to_string(), value.into_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(variables: &[(&str, &str)]) -> Option<ExportConfig> {
        let variables: HashMap<String, String> = variables
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        ExportConfig::from_lookup(|name| variables.get(name).cloned())
    }

    const ENDPOINT: (&str, &str) = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");

    #[test]
    fn export_is_off_unless_an_otlp_variable_is_set() {
        assert_eq!(config(&[]), None);
        assert_eq!(config(&[("AWS_LAMBDA_FUNCTION_NAME", "inventory")]), None);
        assert_eq!(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), None);
        let on = |variable| {
            config(&[
                (variable, "http://127.0.0.1:4318"),
                ("AWS_LAMBDA_FUNCTION_NAME", "inventory"),
            ])
        };
        for variable in EXPORT_VARIABLES {
            assert!(on(variable).is_some(), "{variable}");
        }
        // OTEL_SDK_DISABLED wins, as in every OpenTelemetry SDK.
        assert_eq!(config(&[ENDPOINT, ("OTEL_SDK_DISABLED", "TRUE")]), None);
    }

    #[test]
    fn the_service_is_named_by_otel_service_name_else_by_the_function() {
        let named = |variables: &[(&str, &str)]| config(variables).map(|c| c.service_name);
        assert_eq!(
            named(&[
                ENDPOINT,
                ("OTEL_SERVICE_NAME", "orders"),
                ("AWS_LAMBDA_FUNCTION_NAME", "f")
            ])
            .as_deref(),
            Some("orders")
        );
        assert_eq!(
            named(&[ENDPOINT, ("AWS_LAMBDA_FUNCTION_NAME", "f")]).as_deref(),
            Some("f")
        );
        assert_eq!(named(&[ENDPOINT]).as_deref(), Some("unknown_service"));
    }

    #[test]
    fn the_export_timeout_is_read_in_milliseconds() {
        let timeout = |variables: &[(&str, &str)]| config(variables).map(|c| c.timeout);
        assert_eq!(timeout(&[ENDPOINT]), Some(DEFAULT_TIMEOUT));
        assert_eq!(
            timeout(&[ENDPOINT, ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")]),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(
            timeout(&[
                ENDPOINT,
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
                ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "700")
            ]),
            Some(Duration::from_millis(700))
        );
    }

    #[test]
    fn the_endpoint_is_the_traces_variable_as_it_is_else_the_general_one_with_the_path() {
        let endpoint = |variables: &[(&str, &str)]| config(variables).map(|c| c.endpoint);
        let general = |base| endpoint(&[("OTEL_EXPORTER_OTLP_ENDPOINT", base)]);
        assert_eq!(
            general("http://127.0.0.1:4318").as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        assert_eq!(
            general("http://collector:4318/").as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        assert_eq!(
            general("http://gateway/otlp").as_deref(),
            Some("http://gateway/otlp/v1/traces")
        );
        assert_eq!(
            endpoint(&[
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://traces:9999/custom"
                ),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://wrong:4318"),
            ])
            .as_deref(),
            Some("http://traces:9999/custom")
        );
        assert_eq!(
            endpoint(&[("OTEL_SERVICE_NAME", "orders")]).as_deref(),
            Some("http://localhost:4318/v1/traces")
        );
    }

    #[test]
    fn headers_are_pairs_separated_by_commas_with_values_percent_decoded() {
        let headers = |variables: &[(&str, &str)]| config(variables).map(|c| c.headers);
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            headers(&[
                ENDPOINT,
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "api-key = secret%3D1 ,x-team=orders,broken,=nameless"
                )
            ]),
            Some(pairs(&[("api-key", "secret=1"), ("x-team", "orders")]))
        );
        assert_eq!(
            headers(&[
                ENDPOINT,
                ("OTEL_EXPORTER_OTLP_HEADERS", "general=1"),
                ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "traces=2"),
            ]),
            Some(pairs(&[("traces", "2")]))
        );
        assert_eq!(headers(&[ENDPOINT]), Some(Vec::new()));
    }

    #[test]
    fn protocol_and_compression_are_read_for_the_exporter_to_refuse_what_it_cannot_do() {
        let on = config(&[ENDPOINT]).expect("on");
        assert_eq!(
            (on.protocol.as_str(), on.compression),
            (HTTP_PROTOBUF, None)
        );
        let asked = config(&[
            ENDPOINT,
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
        ])
        .expect("on");
        assert_eq!(
            (asked.protocol.as_str(), asked.compression.as_deref()),
            ("grpc", Some("gzip"))
        );
        let none = config(&[ENDPOINT, ("OTEL_EXPORTER_OTLP_COMPRESSION", "none")]);
        assert_eq!(none.and_then(|c| c.compression), None);
    }
}
