//! Owners and groups by number and by name: staging records both (the
//! numbers of one machine rarely mean the same person on the machine that
//! restores years later), restore gives a file the owner of the recorded
//! name when this machine knows it, else the recorded number. Lookups go
//! through the system's user database (`nix`, getpwuid_r and friends, so
//! NSS sources such as LDAP count) once per number or name.

use std::collections::HashMap;

use nix::unistd::{Gid, Group, Uid, User};

/// Names of numbers and numbers of names, each looked up once.
#[derive(Debug, Default)]
pub struct Owners {
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
    uids: HashMap<String, Option<u32>>,
    gids: HashMap<String, Option<u32>>,
}

impl Owners {
    pub fn new() -> Owners {
        Owners::default()
    }

    /// The name of user `uid` here, if it has one.
    pub fn user_name(&mut self, uid: u32) -> Option<&str> {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                User::from_uid(Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .as_deref()
    }

    /// The name of group `gid` here, if it has one.
    pub fn group_name(&mut self, gid: u32) -> Option<&str> {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                Group::from_gid(Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .map(|g| g.name)
            })
            .as_deref()
    }

    /// The number of user `name` here, if there is one.
    pub fn uid_of(&mut self, name: &str) -> Option<u32> {
        *self
            .uids
            .entry(name.to_string())
            .or_insert_with(|| User::from_name(name).ok().flatten().map(|u| u.uid.as_raw()))
    }

    /// The number of group `name` here, if there is one.
    pub fn gid_of(&mut self, name: &str) -> Option<u32> {
        *self.gids.entry(name.to_string()).or_insert_with(|| {
            Group::from_name(name)
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw())
        })
    }

    /// The owner to give a restored file: the recorded name's number here
    /// when the name is known, else the recorded number.
    pub fn restore_uid(&mut self, name: Option<&str>, uid: u32) -> u32 {
        name.and_then(|n| self.uid_of(n)).unwrap_or(uid)
    }

    /// The group to give a restored file, as [`Owners::restore_uid`].
    pub fn restore_gid(&mut self, name: Option<&str>, gid: u32) -> u32 {
        name.and_then(|n| self.gid_of(n)).unwrap_or(gid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_known_both_ways() {
        let mut o = Owners::new();
        assert_eq!(o.user_name(0), Some("root"));
        assert_eq!(o.uid_of("root"), Some(0));
        assert_eq!(o.restore_uid(Some("root"), 4242), 0);
        assert_eq!(o.restore_uid(Some("no such user \u{1}"), 4242), 4242);
        assert_eq!(o.restore_gid(None, 17), 17);
    }
}
