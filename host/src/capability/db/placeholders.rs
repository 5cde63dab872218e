//! Components write `?` placeholders on every backend; PostgreSQL wants
//! `$1, $2, ...`. This rewrites them, leaving `?` inside string literals,
//! quoted identifiers and comments alone.

/// `sql` with each bare `?` numbered as `$n`. A statement that already uses
/// `$n` is returned unchanged, so PostgreSQL's own `?` operators stay usable.
pub(super) fn number_placeholders(sql: &str) -> String {
    if has_dollar_placeholder(sql) {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                // Copy up to the closing quote; a doubled quote is an escaped one.
                while let Some(d) = chars.next() {
                    out.push(d);
                    if d == c {
                        if chars.peek() == Some(&c) {
                            out.push(chars.next().expect("peeked"));
                        } else {
                            break;
                        }
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                out.push(c);
                let mut prev = '\0';
                for d in chars.by_ref() {
                    out.push(d);
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
            }
            '?' => {
                n += 1;
                out.push_str(&format!("${n}"));
            }
            _ => out.push(c),
        }
    }
    out
}

fn has_dollar_placeholder(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    bytes.windows(2).any(|w| w[0] == b'$' && w[1].is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::number_placeholders;

    #[test]
    fn numbers_bare_placeholders_only() {
        assert_eq!(
            number_placeholders("SELECT * FROM t WHERE a = ? AND b = ?"),
            "SELECT * FROM t WHERE a = $1 AND b = $2"
        );
        assert_eq!(
            number_placeholders("SELECT '?', \"x?\", 'it''s ?' FROM t WHERE a = ?"),
            "SELECT '?', \"x?\", 'it''s ?' FROM t WHERE a = $1"
        );
        assert_eq!(
            number_placeholders("SELECT 1 -- why?\n, ? /* or ? */"),
            "SELECT 1 -- why?\n, $1 /* or ? */"
        );
        assert_eq!(
            number_placeholders("SELECT data ? 'k' FROM t WHERE id = $1"),
            "SELECT data ? 'k' FROM t WHERE id = $1"
        );
    }
}
