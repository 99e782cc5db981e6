//! The templates' placeholders (`{{name}}`) filled in.

/// `template` with each `{{name}}` of `values` replaced by its value. Every placeholder of
/// every template is filled by its caller (the tests generate each variant and look for
/// any left).
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_string(), |text, (name, value)| {
            text.replace(&format!("{{{{{name}}}}}"), value)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_occurrence_and_leaves_other_braces() {
        assert_eq!(render("{{a}}-{b}-{{a}}${X}", &[("a", "1")]), "1-{b}-1${X}");
    }
}
