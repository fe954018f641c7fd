//! Step 1 of writing: the plan. Walks the tree once, breadth-first, and
//! gives every directory its ISO 9660 and Joliet identifiers, its children
//! in each tree's sort order and its Rock Ridge entries; every file gets a
//! slot whose LBA the layout fills in. No byte of output is decided here.

use anyhow::{bail, Context, Result};

use super::names;
use super::records;
use super::sums;
use super::susp::{self, Packed};
use super::tree::{Expected, FileSource, Node, Tree};

/// One entry of a planned directory.
pub struct Child {
    pub iso_ident: Vec<u8>,
    pub joliet_ident: Vec<u8>,
    /// Index into the planned directories, for a subdirectory.
    pub dir: Option<usize>,
    /// Index into the planned files, for a regular file.
    pub file: Option<usize>,
    pub susp: Packed,
}

/// One directory: identifiers, children, Rock Ridge entries of `.` and
/// `..`, and (once laid out) the extents of its ISO and Joliet records.
pub struct DirPlan {
    pub parent: usize,
    pub iso_ident: Vec<u8>,
    pub joliet_ident: Vec<u8>,
    /// Sorted by ISO identifier.
    pub children: Vec<Child>,
    /// Indices into `children` in Joliet identifier order.
    pub joliet_order: Vec<usize>,
    pub dot: Packed,
    pub dotdot: Packed,
    pub iso_lba: u32,
    pub iso_size: u32,
    pub jol_lba: u32,
    pub jol_size: u32,
}

/// One regular file; `lba` is set by the layout.
pub struct FilePlan<'a> {
    pub path: String,
    pub src: &'a FileSource,
    pub size: u64,
    pub lba: u32,
    pub expect: Option<&'a Expected>,
}

/// Every directory (breadth-first, the root first) and every file (in
/// directory order, which is the order their data is written).
pub struct Plan<'a> {
    pub dirs: Vec<DirPlan>,
    pub files: Vec<FilePlan<'a>>,
}

fn nlink(node: &Node) -> u32 {
    match node {
        Node::Dir { children, .. } => {
            2 + children
                .values()
                .filter(|c| matches!(c, Node::Dir { .. }))
                .count() as u32
        }
        _ => 1,
    }
}

/// The SUSP entries of a child record.
fn child_entries(name: &str, node: &Node, epoch: i64) -> Vec<Vec<u8>> {
    let mut e = vec![susp::px(node.st_mode(), nlink(node)), susp::tf(epoch)];
    e.extend(susp::nm(name));
    if let Node::Symlink { target, .. } = node {
        e.extend(susp::sl(target));
    }
    e
}

/// System Use bytes left in a record whose identifier is `ident_len` long.
fn room(ident_len: usize) -> usize {
    254 - records::record_base_len(ident_len)
}

/// The SUSP entries of `.`: SP and ER only in the root's.
fn dot_entries(node: &Node, root: bool, epoch: i64) -> Vec<Vec<u8>> {
    let mut e = Vec::new();
    if root {
        e.push(susp::sp());
    }
    e.push(susp::px(node.st_mode(), nlink(node)));
    e.push(susp::tf(epoch));
    if root {
        e.push(susp::er());
    }
    e
}

/// A directory waiting to be planned.
#[derive(Clone)]
struct Pending<'a> {
    node: &'a Node,
    parent: usize,
    iso_ident: Vec<u8>,
    joliet_ident: Vec<u8>,
    path: String,
}

/// Collects directories breadth-first and files in directory order.
pub fn plan_tree(root: &Node, epoch: i64) -> Result<Plan<'_>> {
    let mut plan = Plan {
        dirs: Vec::new(),
        files: Vec::new(),
    };
    let mut queue = vec![Pending {
        node: root,
        parent: 0,
        iso_ident: vec![0],
        joliet_ident: vec![0],
        path: String::new(),
    }];
    let mut qi = 0;
    while qi < queue.len() {
        let pending = queue[qi].clone();
        qi += 1;
        let dir = plan_dir(&pending, &mut plan, &mut queue, epoch)?;
        plan.dirs.push(dir);
    }
    // Link child dirs to their plans (queue order == dirs order).
    for (i, p) in queue.iter().enumerate().skip(1) {
        let c = plan.dirs[p.parent]
            .children
            .iter_mut()
            .find(|c| c.iso_ident == p.iso_ident)
            .expect("child dir");
        c.dir = Some(i);
    }
    // `..` carries the parent's attributes.
    let parent_nodes: Vec<&Node> = queue.iter().map(|q| queue[q.parent].node).collect();
    for (d, pn) in plan.dirs.iter_mut().zip(parent_nodes) {
        d.dotdot = susp::pack(
            vec![susp::px(pn.st_mode(), nlink(pn)), susp::tf(epoch)],
            room(1),
        )?;
    }
    Ok(plan)
}

/// Plans one directory: its children (files appended to `plan.files`,
/// subdirectories queued) and its `.` entries.
fn plan_dir<'a>(
    pending: &Pending<'a>,
    plan: &mut Plan<'a>,
    queue: &mut Vec<Pending<'a>>,
    epoch: i64,
) -> Result<DirPlan> {
    let Node::Dir { children, .. } = pending.node else {
        unreachable!()
    };
    let entries: Vec<(&str, bool)> = children
        .iter()
        .map(|(n, c)| (n.as_str(), matches!(c, Node::Dir { .. })))
        .collect();
    let iso_ids = names::primary_names(&entries);
    let jol_ids = names::joliet_names(&entries.iter().map(|e| e.0).collect::<Vec<_>>());
    let me = plan.dirs.len();
    let mut kids = Vec::new();
    for (((name, child), iso), jol) in children.iter().zip(iso_ids).zip(jol_ids) {
        let child_path = if pending.path.is_empty() {
            name.clone()
        } else {
            format!("{}/{name}", pending.path)
        };
        let susp = susp::pack(child_entries(name, child, epoch), room(iso.len()))
            .with_context(|| format!("Rock Ridge entries of {child_path:?}"))?;
        let mut c = Child {
            iso_ident: iso.clone(),
            joliet_ident: jol.clone(),
            dir: None,
            file: None,
            susp,
        };
        match child {
            Node::Dir { .. } => queue.push(Pending {
                node: child,
                parent: me,
                iso_ident: iso,
                joliet_ident: jol,
                path: child_path,
            }),
            Node::File {
                src, size, expect, ..
            } => {
                c.file = Some(plan.files.len());
                plan.files.push(FilePlan {
                    path: child_path,
                    src,
                    size: *size,
                    lba: 0,
                    expect: expect.as_ref(),
                });
            }
            Node::Symlink { .. } => {}
        }
        kids.push(c);
    }
    kids.sort_by(|a, b| a.iso_ident.cmp(&b.iso_ident));
    let mut joliet_order: Vec<usize> = (0..kids.len()).collect();
    joliet_order.sort_by(|&a, &b| kids[a].joliet_ident.cmp(&kids[b].joliet_ident));
    let dot = susp::pack(dot_entries(pending.node, me == 0, epoch), room(1))?;
    Ok(DirPlan {
        parent: pending.parent,
        iso_ident: pending.iso_ident.clone(),
        joliet_ident: pending.joliet_ident.clone(),
        children: kids,
        joliet_order,
        dot,
        dotdot: Packed::default(),
        iso_lba: 0,
        iso_size: 0,
        jol_lba: 0,
        jol_size: 0,
    })
}

/// `tree` with a zero-filled `SHA256SUMS` of the length its sums will
/// have, so the layout can place it before any file is hashed.
pub fn sums_placeholder(tree: &Tree) -> Result<Tree> {
    if tree.get(sums::SUMS_PATH).is_some() {
        bail!(
            "the ISO tree already has {}; the writer makes it (IsoImage::sha256sums)",
            sums::SUMS_PATH
        );
    }
    let mut t = tree.clone();
    t.add_file(
        sums::SUMS_PATH,
        FileSource::Bytes(vec![0; sums::sums_len(tree)]),
        0o644,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tree {
        let mut t = Tree::new();
        t.add_file("/b/two", FileSource::Bytes(vec![2; 3]), 0o644)
            .unwrap();
        t.add_file("/a.txt", FileSource::Bytes(vec![1; 5]), 0o644)
            .unwrap();
        t.add_dir("/b/c", 0o755).unwrap();
        t.add_symlink("/link", "a.txt").unwrap();
        t
    }

    #[test]
    fn directories_breadth_first_and_files_in_directory_order() {
        let t = sample();
        let p = plan_tree(&t.root, 0).unwrap();
        assert_eq!(p.dirs.len(), 3);
        assert_eq!(p.dirs[0].iso_ident, vec![0]);
        assert_eq!(p.dirs[1].iso_ident, b"B".to_vec());
        assert_eq!(p.dirs[1].parent, 0);
        assert_eq!(p.dirs[2].iso_ident, b"C".to_vec());
        assert_eq!(p.dirs[2].parent, 1);
        let paths: Vec<&str> = p.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["a.txt", "b/two"]);
        assert_eq!(p.files[0].size, 5);
        // Children linked to their plans: the root holds a.txt, b and link.
        let root = &p.dirs[0];
        assert_eq!(root.children.len(), 3);
        let b = root.children.iter().find(|c| c.dir.is_some()).unwrap();
        assert_eq!(b.dir, Some(1));
        assert_eq!(root.children.iter().filter(|c| c.file.is_some()).count(), 1);
        // Children are sorted by ISO identifier.
        let ids: Vec<&[u8]> = root.children.iter().map(|c| &c.iso_ident[..]).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn only_the_root_dot_announces_rock_ridge() {
        let t = sample();
        let root_dot = dot_entries(&t.root, true, 0);
        assert_eq!(&root_dot[0][..2], b"SP");
        assert_eq!(&root_dot.last().unwrap()[..2], b"ER");
        let sub = dot_entries(&t.root, false, 0);
        assert_eq!(sub.len(), 2);
        assert_eq!(&sub[0][..2], b"PX");
        assert_eq!(&sub[1][..2], b"TF");
    }

    #[test]
    fn placeholder_reserves_the_sums_and_refuses_a_given_one() {
        let t = sample();
        let with = sums_placeholder(&t).unwrap();
        let Some(Node::File { size, .. }) = with.get(sums::SUMS_PATH) else {
            panic!("no SHA256SUMS");
        };
        assert_eq!(*size as usize, sums::sums_len(&t));
        assert!(sums_placeholder(&with).is_err());
    }
}
