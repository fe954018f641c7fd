//! Finding attachments at a registry: the referrers API, the referrers
//! tag schema where a registry lacks the API, and the cosign tags.
//! (Written by the carry work; see the module above.)
