//! OpenSSH's name patterns (`match.c`): `*` (any run of characters) and `?` (any one
//! character), and comma-separated lists where a `!pattern` that matches rules the name out.
//! known_hosts lines name their hosts with them; certificate principals may hold wildcards.

/// Whether `name` matches an OpenSSH pattern list (`a,b*,!c`), case-insensitively: a match of a
/// negated pattern rules it out, whatever else matches.
pub(super) fn matches_patterns(patterns: &str, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let mut matched = false;
    for pattern in patterns.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob(&negated.to_ascii_lowercase(), &name) {
                return false;
            }
        } else if glob(&pattern.to_ascii_lowercase(), &name) {
            matched = true;
        }
    }
    matched
}

/// `*` (any run of characters) and `?` (any one character) wildcards.
pub(super) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_follow_openssh() {
        assert!(matches_patterns("a.example,b.example", "b.example"));
        assert!(matches_patterns("*.example", "x.example"));
        assert!(matches_patterns("[127.0.0.1]:2222", "[127.0.0.1]:2222"));
        assert!(!matches_patterns("127.0.0.1", "[127.0.0.1]:2222"));
        assert!(matches_patterns("[127.0.0.?]:*", "[127.0.0.1]:2222"));
        assert!(!matches_patterns("*.example,!bad.example", "bad.example"));
        // A negated match rules the line out even when listed first or also matched plainly.
        assert!(!matches_patterns("!bad.example,bad.example", "bad.example"));
        assert!(matches_patterns("*,!bad.example", "good.example"));
        assert!(!matches_patterns("!bad.example", "good.example"));
        assert!(matches_patterns("h?st", "HOST"));
        assert!(!matches_patterns("h?st", "hoost"));
    }
}
