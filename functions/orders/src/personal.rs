//! Personal data in logs: an e-mail address is written masked, never whole. Logs are kept
//! (30 days by default), read by more people than the tables, and copied to wherever
//! operators ship them; the address stays in the table that needs it.

use std::fmt;

/// An e-mail address as logs and errors show it: the first character of the local part and
/// the domain (`a***@example.com`), enough to tell two customers' mails apart in a support
/// case without writing the address down. A value without `@` is masked whole.
#[derive(Clone, Copy, Debug)]
pub struct MaskedEmail<'a>(pub &'a str);

impl fmt::Display for MaskedEmail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.rsplit_once('@') {
            Some((local, domain)) => match local.chars().next() {
                Some(first) => write!(f, "{first}***@{domain}"),
                None => write!(f, "***@{domain}"),
            },
            None => f.write_str("***"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MaskedEmail;

    #[test]
    fn only_the_first_character_and_the_domain_are_shown() {
        let shown = |address: &str| MaskedEmail(address).to_string();
        assert_eq!(shown("ada.lovelace@example.com"), "a***@example.com");
        assert_eq!(shown("é@example.org"), "é***@example.org");
        assert_eq!(shown("@example.com"), "***@example.com");
        assert_eq!(shown("not an address"), "***");
        assert!(!shown("ada.lovelace@example.com").contains("lovelace"));
    }
}
