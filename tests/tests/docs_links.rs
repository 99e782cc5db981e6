//! The documents' links resolve: every relative link in the user guide, the READMEs and the
//! reports names a file that exists, and every `#anchor` a heading of the file it points
//! into (as GitHub and mdBook make anchors from headings). The guide's table of contents
//! (`guide/src/SUMMARY.md`) lists every page, and every page it lists exists. Links to other
//! sites are not fetched (the tests run offline); the guide's code is compiled as the tests
//! crate's doctests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// The documents a reader follows links through.
fn documents() -> Vec<PathBuf> {
    let root = root();
    let mut documents: Vec<PathBuf> = [
        "README.md",
        "RELIABILITY.md",
        "SECURITY.md",
        "BENCHMARKS.md",
        "RELEASING.md",
        "CHANGELOG.md",
        "shared/README.md",
        "local/README.md",
    ]
    .iter()
    .map(|path| root.join(path))
    .collect();
    documents.extend(guide_pages());
    documents
}

fn guide_pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("guide/src"))
        .expect("guide/src is read")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "md"))
        .collect();
    pages.sort();
    pages
}

/// The lines outside fenced code blocks.
fn outside_fences(text: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            lines.push(line);
        }
    }
    lines
}

/// The text outside code, line by line: inline code spans dropped, whose brackets are not
/// links.
fn prose(text: &str) -> Vec<String> {
    outside_fences(text)
        .into_iter()
        .map(|line| {
            line.split('`')
                .enumerate()
                .filter(|(index, _)| index % 2 == 0)
                .map(|(_, part)| part)
                .collect()
        })
        .collect()
}

/// The targets of the Markdown links `[text](target)` in `text`.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose(text) {
        let mut rest = line.as_str();
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].trim().to_string());
            rest = &after[end..];
        }
    }
    targets
}

/// A heading's anchor, as GitHub and mdBook derive it: lowercase, punctuation dropped
/// (but `-` and `_`), spaces as dashes.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of `text`'s headings (their code spans' text kept, the backticks dropped).
fn anchors(text: &str) -> BTreeSet<String> {
    outside_fences(text)
        .iter()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| slug(&heading.trim_start_matches('#').replace('`', "")))
        .collect()
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut broken = Vec::new();
    for document in documents() {
        let text = std::fs::read_to_string(&document)
            .unwrap_or_else(|error| panic!("{}: {error}", document.display()));
        let folder = document.parent().expect("a document's folder");
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let file = if path.is_empty() {
                document.clone()
            } else {
                folder.join(path)
            };
            if !file.exists() {
                broken.push(format!("{}: {target} (no such file)", document.display()));
                continue;
            }
            if anchor.is_empty() || file.is_dir() {
                continue;
            }
            let linked = std::fs::read_to_string(&file).unwrap_or_default();
            if !anchors(&linked).contains(anchor) {
                broken.push(format!(
                    "{}: {target} (no such heading)",
                    document.display()
                ));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_guide_lists_every_page_and_every_listed_page_exists() {
    let summary_path = root().join("guide/src/SUMMARY.md");
    let summary = std::fs::read_to_string(&summary_path).expect("SUMMARY.md is read");
    let listed: BTreeSet<PathBuf> = link_targets(&summary)
        .into_iter()
        .map(|target| root().join("guide/src").join(target))
        .collect();
    let pages: BTreeSet<PathBuf> = guide_pages()
        .into_iter()
        .filter(|page| page != &summary_path)
        .collect();
    assert_eq!(listed, pages, "SUMMARY.md and guide/src/ disagree");
}

#[test]
fn anchors_are_made_as_github_makes_them() {
    assert_eq!(
        slug("Exactly once across hops: the outbox"),
        "exactly-once-across-hops-the-outbox"
    );
    assert_eq!(
        slug("What each path costs (requests)"),
        "what-each-path-costs-requests"
    );
    let text = "# Title\n## The `new` command\n```\n# not a heading\n```\nSee [x](#title) and `[y](#code)`.";
    assert_eq!(link_targets(text), ["#title"]);
    let anchors = anchors(text);
    assert!(anchors.contains("title") && anchors.contains("the-new-command"));
    assert!(!anchors.contains("not-a-heading"));
}
