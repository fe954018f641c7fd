//! `attachments`: every `artifactTypes` entry is a media type
//! (`type/subtype`, as RFC 6838 spells names), listed once.

use super::Validator;
use crate::config::checks;
use crate::config::locate::join_index;

impl Validator<'_> {
    pub(super) fn attachments(&mut self) {
        let types = &self.app.config.attachments.artifact_types;
        for (i, t) in types.iter().enumerate() {
            let field = join_index("attachments.artifactTypes", i);
            self.check(&field, checks::media_type(t));
            if types[..i].contains(t) {
                self.problem(
                    &field,
                    format!("{t:?} is listed twice; list each type once"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{problems, GOOD};
    use super::super::Purpose;

    #[test]
    fn artifact_types_must_be_media_types_listed_once() {
        let with = |section: &str| format!("{GOOD}{section}");
        let ok = with(
            "attachments:\n  carry: true\n  artifactTypes: [application/spdx+json, \
             application/vnd.dev.cosign.simplesigning.v1+json]\n",
        );
        assert_eq!(problems(&ok, Purpose::Bundle), Vec::<String>::new());
        let ps = problems(
            &with("attachments:\n  artifactTypes: [spdx, application/spdx+json, application/spdx+json]\n"),
            Purpose::Bundle,
        );
        assert_eq!(ps.len(), 2, "{ps:#?}");
        assert!(
            ps[0].contains("attachments.artifactTypes[0]")
                && ps[0].contains("\"spdx\" is not a media type"),
            "{}",
            ps[0]
        );
        assert!(
            ps[1].contains("attachments.artifactTypes[2]") && ps[1].contains("listed twice"),
            "{}",
            ps[1]
        );
        let off = with("attachments:\n  carry: false\n");
        assert_eq!(problems(&off, Purpose::Bundle), Vec::<String>::new());
    }
}
