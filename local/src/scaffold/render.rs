//! The templates' placeholders (`{{name}}`) filled in.

/// `template` with each `{{name}}` of `values` replaced by its value. Every placeholder of
/// every template is filled by its caller (the tests generate each variant and look for
/// any left). A line that holds a placeholder alone and is filled with nothing is left out,
/// line break and all: what only a variant has (`--outbox`) stands on lines of its own, and
/// the other variants read as if those lines had never been there.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let kept: String = template
        .split_inclusive('\n')
        .filter(|line| {
            !values
                .iter()
                .any(|(name, value)| value.is_empty() && line.trim() == format!("{{{{{name}}}}}"))
        })
        .collect();
    values.iter().fold(kept, |text, (name, value)| {
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

    #[test]
    fn a_line_of_a_placeholder_filled_with_nothing_is_left_out() {
        let template = "one\n{{extra}}\ntwo {{inline}}.\n  {{extra}}\nthree\n";
        assert_eq!(
            render(template, &[("extra", ""), ("inline", "")]),
            "one\ntwo .\nthree\n"
        );
        assert_eq!(
            render(template, &[("extra", "more"), ("inline", "x")]),
            "one\nmore\ntwo x.\n  more\nthree\n"
        );
    }
}
