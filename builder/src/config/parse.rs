//! Step 1: YAML text → [`Config`], checking only the shape. Errors name
//! the file, line and column, the field path and what would be valid.

use std::path::Path;

use super::locate::Locator;
use super::problem::{ConfigError, Position, Problem};
use super::redact;
use super::schema::Config;

/// Parse one image config. `file` is only used in messages.
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let de = serde_yaml::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, Config>(de) {
        Ok(config) => Ok(config),
        Err(err) => {
            let field = path_string(err.path());
            let inner = err.into_inner();
            let position = inner.location().map(|l| Position {
                line: l.line(),
                column: l.column(),
            });
            // Errors without a position (rare) are placed at the field.
            let position =
                position.or_else(|| field.as_deref().and_then(|f| Locator::new(text).find(f)));
            // Never quote the file's content (see `redact`).
            Err(ConfigError::one(Problem {
                file: file.to_path_buf(),
                message: redact::redact(&explain(&inner, field.as_deref())),
                field: field.as_deref().map(redact::redact_path),
                position,
            }))
        }
    }
}

/// serde_path_to_error's path, or `None` for the document itself.
fn path_string(path: &serde_path_to_error::Path) -> Option<String> {
    let s = path.to_string();
    (s != "." && !s.is_empty()).then_some(s)
}

/// serde_yaml's message without its own " at line L column C" (the
/// problem prints the position in front), made more helpful where
/// serde's wording is terse.
fn explain(err: &serde_yaml::Error, field: Option<&str>) -> String {
    let mut msg = err.to_string();
    if let Some(l) = err.location() {
        msg = msg.replacen(
            &format!(" at line {} column {}", l.line(), l.column()),
            "",
            1,
        );
    }
    // serde_yaml puts its own notion of the path in front.
    if let Some(f) = field {
        if let Some(rest) = msg.strip_prefix(&format!("{f}: ")) {
            msg = rest.to_string();
        }
    }
    let in_from = field.is_some_and(|f| f.ends_with(".from") || f.contains(".from."));
    if in_from && (msg.contains("single key") || msg.contains("1 entry")) {
        msg = "must have exactly one key: registry, ociLayout, ociArchive or dockerArchive"
            .to_string();
    } else if in_from && msg.contains("unit variant") {
        msg = format!(
            "{msg}: write the source as a mapping, e.g. `from: {{ registry: {{}} }}` or \
             `from: {{ ociLayout: {{ path: DIR }} }}`"
        );
    }
    if msg.contains("more than one document") {
        msg.push_str("; an image config is one YAML document: remove `---` and what follows");
    }
    if msg.starts_with("missing field") {
        msg.push_str(" (it is required here)");
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::{ImageSource, TlsMode};

    const GOOD: &str = "\
apiVersion: airlift/v1alpha1
kind: Appliance
metadata:
  name: demo
  version: 1.0.0
images:
  - ref: quay.io/example/hello:1.0
    from:
      ociLayout:
        path: images/hello
        ref: \"1.0\"
  - ref: nginx:1.25
";

    fn err(text: &str) -> String {
        parse(text, Path::new("dir/demo.yaml"))
            .unwrap_err()
            .to_string()
    }

    fn with(extra: &str) -> String {
        format!("{GOOD}{extra}")
    }

    #[test]
    fn parses_a_good_config() {
        let c = parse(GOOD, Path::new("demo.yaml")).unwrap();
        assert_eq!(c.metadata.name, "demo");
        assert_eq!(c.images.len(), 2);
        assert!(matches!(c.images[0].from, Some(ImageSource::OciLayout(_))));
        assert_eq!(c.images[1].from, None);
        assert_eq!(c.registry.port, 5000);
        assert_eq!(c.registry.tls.mode, TlsMode::Generate);
        assert_eq!(c.output.volume_label, "AIRLIFT");
    }

    #[test]
    fn unknown_top_level_field() {
        let e = err(&with("colour: blue\n"));
        assert!(e.starts_with("dir/demo.yaml:13:1: field colour: "), "{e}");
        assert!(e.contains("unknown field `colour`"), "{e}");
        assert!(e.contains("expected one of"), "{e}");
        assert!(e.contains("`images`"), "{e}");
    }

    #[test]
    fn unknown_nested_field() {
        let text = GOOD.replace("        path: images/hello", "        pth: images/hello");
        let e = err(&text);
        assert!(e.starts_with("dir/demo.yaml:10:9: "), "{e}");
        assert!(e.contains("field images[0].from.ociLayout.pth: "), "{e}");
        assert!(
            e.contains("unknown field `pth`, expected `path` or `ref`"),
            "{e}"
        );
    }

    #[test]
    fn yaml_syntax_error() {
        let e = err("apiVersion: airlift/v1alpha1\nkind: [Appliance\nmetadata: {}\n");
        assert!(e.starts_with("dir/demo.yaml:"), "{e}");
        let pos = e.split(':').nth(1).unwrap();
        assert!(pos.parse::<usize>().unwrap() >= 2, "{e}");
        assert!(!e.contains("at line"), "{e}");
    }

    #[test]
    fn wrong_type() {
        let e = err(&with("registry:\n  port: many\n"));
        assert!(
            e.starts_with("dir/demo.yaml:14:9: field registry.port: "),
            "{e}"
        );
        assert!(
            e.contains("invalid type: string \"many\", expected u16"),
            "{e}"
        );
    }

    #[test]
    fn bad_enum_value_lists_valid_values() {
        let e = err(&with("registry:\n  tls:\n    mode: maybe\n"));
        assert!(
            e.starts_with("dir/demo.yaml:15:11: field registry.tls.mode: "),
            "{e}"
        );
        assert!(e.contains("unknown variant `maybe`"), "{e}");
        assert!(e.contains("`generate`, `provided`, `off`"), "{e}");
        let e = err(&with("runtimes: [crio, cri-o]\n"));
        assert!(e.contains("field runtimes[1]"), "{e}");
        assert!(e.contains("`containerd`"), "{e}");
    }

    #[test]
    fn missing_required_field() {
        let text = GOOD.replace("  version: 1.0.0\n", "");
        let e = err(&text);
        assert!(e.starts_with("dir/demo.yaml:4:3: field metadata: "), "{e}");
        assert!(e.contains("missing field `version`"), "{e}");
        // `base` without `image` needs kernel, rootfs and bootloader: they
        // are optional in the schema (base.image), so normalising says it.
        let text = with("base:\n  kernel: k\n  rootfs: r\n");
        let file = Path::new("dir/demo.yaml");
        let config = parse(&text, file).unwrap();
        let origin = crate::config::Origin::new(file, &text);
        let e = crate::config::normalise(config, origin, &|_| None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "dir/demo.yaml:13:1: field base: missing field `bootloader` (a base from host paths \
             needs it; or name the OS image in base.image)"
        );
    }

    #[test]
    fn two_keys_in_from() {
        let text = GOOD.replace(
            "        ref: \"1.0\"\n",
            "        ref: \"1.0\"\n      ociArchive:\n        path: x.tar\n",
        );
        let e = err(&text);
        assert!(e.contains("field images[0].from"), "{e}");
        assert_eq!(
            e,
            "dir/demo.yaml:9:7: field images[0].from: must have exactly one key: \
             registry, ociLayout, ociArchive or dockerArchive"
        );
        let e = err(&GOOD.replace(
            "      ociLayout:\n        path: images/hello\n        ref: \"1.0\"\n",
            "      {}\n",
        ));
        assert!(
            e.contains("field images[0].from: must have exactly one key"),
            "{e}"
        );
    }

    #[test]
    fn source_written_as_a_word() {
        let text = GOOD.replace(
            "    from:\n      ociLayout:\n        path: images/hello\n        ref: \"1.0\"\n",
            "    from: ociLayout\n",
        );
        let e = err(&text);
        assert!(
            e.starts_with("dir/demo.yaml:8:11: field images[0].from: "),
            "{e}"
        );
        assert!(e.contains("write the source as a mapping"), "{e}");
    }

    #[test]
    fn several_documents() {
        let e = err(&with("---\nkind: Appliance\n"));
        assert!(e.starts_with("dir/demo.yaml: "), "{e}");
        assert!(e.contains("one YAML document"), "{e}");
    }

    #[test]
    fn unknown_source_kind() {
        let text = GOOD.replace("      ociLayout:", "      ociDir:");
        let e = err(&text);
        assert!(e.contains("field images[0].from"), "{e}");
        assert!(
            e.contains("`ociLayout`, `ociArchive`, `dockerArchive`"),
            "{e}"
        );
        assert!(e.starts_with("dir/demo.yaml:9:7:"), "{e}");
    }
}
