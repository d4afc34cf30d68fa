//! `FABBOOT_CMDLOG`: one JSON object per executed command, in the exact format other
//! checks rely on. (Its own test binary: the variable is process-wide.)

use fabboot_sim::scenario::{self, Start};

#[test]
fn every_command_is_logged_as_one_json_object() {
    let path = std::env::temp_dir().join(format!("fabboot-cmdlog-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    // SAFETY: this test binary runs this one test; nothing else reads the environment
    // concurrently.
    unsafe { std::env::set_var("FABBOOT_CMDLOG", &path) };
    let report = scenario::hca_bringup(Start::PowerOn).expect("bring-up");
    let text = std::fs::read_to_string(&path).expect("the log was written");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), report.commands.len());
    for (line, (op, op_mod, status)) in lines.iter().zip(&report.commands) {
        let v: serde_json::Value = serde_json::from_str(line).expect(line);
        let obj = v.as_object().expect("an object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["input", "op_mod", "opcode", "output", "status", "syndrome"]
        );
        assert_eq!(obj["opcode"].as_u64(), Some(u64::from(*op)));
        assert_eq!(obj["op_mod"].as_u64(), Some(u64::from(*op_mod)));
        assert_eq!(obj["status"].as_u64(), Some(u64::from(*status)));
        assert_eq!(obj["syndrome"].as_u64(), Some(0));
        let input = obj["input"].as_str().unwrap();
        let output = obj["output"].as_str().unwrap();
        assert!(input.len() >= 32 && input.len().is_multiple_of(2) && output.len() >= 32);
        assert!(
            input
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        // The input starts with the opcode, big-endian.
        assert_eq!(&input[..4], format!("{op:04x}"));
    }
    // SET_HCA_CAP's input crossed eight mailboxes and is logged whole: 0x1010 bytes.
    let set_cap = lines
        .iter()
        .find(|l| l.contains("\"opcode\": 265"))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(set_cap).unwrap();
    assert_eq!(v["input"].as_str().unwrap().len(), 2 * 0x1010);
    let _ = std::fs::remove_file(&path);
}
