//! The host appspec (`version: 0.0`, `os: linux`): the real appspecs kept
//! as fixtures parse, and each rule's mistake is a located error.

use cutover_spec::appspec_host::{FileExistsBehavior, ObjectType, Os};
use cutover_spec::{HostEvent, parse_appspec, parse_host_appspec};

/// Removes the first newline and the indentation common to all lines.
fn dedent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text).trim_end();
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Asserts that `text` is refused with exactly `expected` (one diagnostic a line).
#[track_caller]
fn check(text: &str, expected: &str) {
    let text = dedent(text);
    match parse_host_appspec("appspec.yml", &text) {
        Ok(_) => panic!("accepted, expected:\n{expected}\n--- document:\n{text}"),
        Err(e) => assert_eq!(e.to_string(), dedent(expected).trim_end(), "\n{text}"),
    }
}

const REAL: [(&str, &str); 5] = [
    (
        "codedeploy-ansible-local.appspec.yml",
        include_str!(
            "../../cutover/tests/fixtures/real-world/appspec/codedeploy-ansible-local.appspec.yml"
        ),
    ),
    (
        "codedeploy-chef-solo.appspec.yml",
        include_str!(
            "../../cutover/tests/fixtures/real-world/appspec/codedeploy-chef-solo.appspec.yml"
        ),
    ),
    (
        "codedeploy-elb-v2.appspec.yml",
        include_str!(
            "../../cutover/tests/fixtures/real-world/appspec/codedeploy-elb-v2.appspec.yml"
        ),
    ),
    (
        "codedeploy-puppet-masterless.appspec.yml",
        include_str!(
            "../../cutover/tests/fixtures/real-world/appspec/codedeploy-puppet-masterless.appspec.yml"
        ),
    ),
    (
        "codedeploy-sampleapp-linux.appspec.yml",
        include_str!(
            "../../cutover/tests/fixtures/real-world/appspec/codedeploy-sampleapp-linux.appspec.yml"
        ),
    ),
];

#[test]
fn five_real_appspecs_parse_without_warnings() {
    for (file, text) in REAL {
        let parsed = parse_host_appspec(file, text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(parsed.warnings.is_empty(), "{file}: {:?}", parsed.warnings);
        assert_eq!(parsed.value.os, Os::Linux);
        assert!(!parsed.value.files.is_empty(), "{file}");
        // The ECS reader still refuses them, as such.
        let ecs = parse_appspec(file, text).unwrap_err().to_string();
        assert!(ecs.contains("EC2/on-premises appspec"), "{ecs}");
    }
}

#[test]
fn the_sample_app_reads_as_written() {
    let spec = parse_host_appspec("a.yml", REAL[4].1).unwrap().value;
    assert_eq!(spec.files[0].source, "/index.html");
    assert_eq!(spec.files[0].destination, "/var/www/html/");
    // Hooks come out in lifecycle order, whatever the file's order.
    let events: Vec<HostEvent> = spec.hooks.iter().map(|h| h.event).collect();
    assert_eq!(
        events,
        [HostEvent::ApplicationStop, HostEvent::BeforeInstall]
    );
    let before = spec.scripts(HostEvent::BeforeInstall);
    assert_eq!(before.len(), 2);
    assert_eq!(before[1].location, "scripts/start_server");
    assert_eq!(before[1].timeout_seconds(), 300);
    assert_eq!(before[1].runas.as_deref(), Some("root"));
    assert!(spec.scripts(HostEvent::ValidateService).is_empty());
}

#[test]
fn every_section_reads_typed() {
    let text = dedent(
        r#"
        version: 0.0
        os: linux
        files:
          - source: app/
            destination: /srv/app
        file_exists_behavior: RETAIN
        permissions:
          - object: /srv/app
            pattern: "*.sh"
            except: [tmp.sh]
            owner: app
            group: app
            mode: 755
            acls: ["u:bob:rw"]
            context: {type: httpd_sys_content_t}
            type: [file, directory]
          - object: /srv/app/conf
            mode: "0640"
        hooks:
          ValidateService:
          AfterAllowTraffic:
            - location: check.sh
        "#,
    );
    let spec = parse_host_appspec("appspec.yml", &text).unwrap().value;
    assert_eq!(spec.file_exists_behavior, Some(FileExistsBehavior::Retain));
    let p = &spec.permissions[0];
    assert_eq!(p.mode.as_ref().and_then(|m| m.bits()), Some(0o755));
    assert_eq!(p.kind, [ObjectType::File, ObjectType::Directory]);
    assert_eq!(spec.permissions[1].pattern, "**");
    assert_eq!(
        spec.permissions[1].mode.as_ref().and_then(|m| m.bits()),
        Some(0o640)
    );
    assert_eq!(
        spec.scripts(HostEvent::AfterAllowTraffic)[0].timeout_seconds(),
        3600
    );
    assert!(spec.scripts(HostEvent::ValidateService).is_empty());
}

#[test]
fn windows_is_refused_as_unsupported_located() {
    check(
        r#"
        version: 0.0
        os: windows
        files:
          - source: \index.html
            destination: C:\inetpub\wwwroot
        "#,
        "appspec.yml:2:5: os: Windows hosts are not supported: Cutover deploys to Linux hosts only (os: linux)",
    );
}

#[test]
fn version_and_os_mistakes() {
    check(
        r#"
        version: 0.1
        os: macos
        "#,
        r#"appspec.yml:2:5: os: unknown variant "macos", expected one of linux, windows"#,
    );
    check(
        r#"
        version: 1.0
        os: linux
        "#,
        r#"appspec.yml:1:10: version: unsupported version "1.0", expected 0.0"#,
    );
}

#[test]
fn files_mistakes() {
    check(
        r#"
        version: 0.0
        os: linux
        files:
          - source: ../secrets
            destination: srv/app
          - destination: /srv
        "#,
        r#"appspec.yml:6:5: files[1]: missing field "source""#,
    );
    check(
        r#"
        version: 0.0
        os: linux
        file_exists_behavior: REPLACE
        "#,
        r#"appspec.yml:3:23: file_exists_behavior: unknown variant "REPLACE", expected one of DISALLOW, OVERWRITE, RETAIN"#,
    );
    check(
        r#"
        version: 0.0
        os: linux
        files:
          - source: ../secrets
            destination: srv/app
        "#,
        r#"
        appspec.yml:4:13: files[0].source: "../secrets" leaves the revision (`..`)
        appspec.yml:5:18: files[0].destination: must be an absolute path, found "srv/app"
        "#,
    );
}

#[test]
fn permissions_mistakes() {
    check(
        r#"
        version: 0.0
        os: linux
        permissions:
          - object: srv
            mode: 789
            type: [file, file]
          - object: /srv
            type: [socket]
        "#,
        r#"
        appspec.yml:8:12: permissions[1].type[0]: unknown variant "socket", expected one of file, directory
        "#,
    );
    check(
        r#"
        version: 0.0
        os: linux
        permissions:
          - object: srv
            mode: 789
            type: [file, file]
        "#,
        r#"
        appspec.yml:4:13: permissions[0].object: must be an absolute path, found "srv"
        appspec.yml:5:11: permissions[0].mode: must be an octal mode of up to four digits 0-7, such as 644 or 0755
        appspec.yml:6:18: permissions[0].type[1]: listed twice
        "#,
    );
}

#[test]
fn hooks_mistakes() {
    check(
        r#"
        version: 0.0
        os: linux
        hooks:
          Install:
            - location: x.sh
          AllowTraffic: []
          ApplicationStrat:
            - location: x.sh
          Start: []
          ValidateService:
            - location: ""
              timeout: 3601
            - location: ../../etc/x.sh
              timeout: 0
        "#,
        r#"
        appspec.yml:4:3: hooks.Install: Install is performed by the agent or the load balancer and cannot have scripts
        appspec.yml:6:3: hooks.AllowTraffic: AllowTraffic is performed by the agent or the load balancer and cannot have scripts
        appspec.yml:7:3: hooks.ApplicationStrat: unknown lifecycle event "ApplicationStrat", did you mean ApplicationStart?
        appspec.yml:9:3: hooks.Start: "Start" is run by CodeDeploy itself and cannot have scripts
        appspec.yml:11:17: hooks.ValidateService[0].location: must not be empty
        appspec.yml:12:16: hooks.ValidateService[0].timeout: must be between 1 and 3600 seconds, found 3601
        appspec.yml:13:17: hooks.ValidateService[1].location: "../../etc/x.sh" leaves the revision (`..`)
        appspec.yml:14:16: hooks.ValidateService[1].timeout: must be between 1 and 3600 seconds, found 0
        "#,
    );
}

#[test]
fn hooks_must_be_a_mapping() {
    check(
        r#"
        version: 0.0
        os: linux
        hooks:
          - ApplicationStop: stop.sh
        "#,
        "appspec.yml:4:3: hooks: expected a mapping from lifecycle events to lists of scripts",
    );
}

#[test]
fn an_unknown_key_is_a_warning() {
    let text = "version: 0.0\nos: linux\nfile_exist_behavior: OVERWRITE\n";
    let parsed = parse_host_appspec("appspec.yml", text).unwrap();
    assert_eq!(parsed.warnings.len(), 1, "{:?}", parsed.warnings);
    assert!(
        parsed.warnings[0]
            .to_string()
            .contains("file_exist_behavior")
    );
}

#[test]
fn hostile_input_never_panics() {
    for text in [
        "",
        "[]",
        "hooks: 3",
        "version: 0.0\nos: linux\nhooks: [1]",
        "os: [",
        "\0",
    ] {
        let _ = parse_host_appspec("appspec.yml", text);
    }
}
