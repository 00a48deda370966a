import AEPSLTestSupport
import Foundation
import Testing

/// Two or three "hosts" on this machine for mpirun across them: Linux network namespaces
/// joined by veth pairs to a bridge (scripts/netns-hosts.sh), each with its own address in
/// 10.213.0.0/24, its own host name and no other network. They share the file system, so
/// the run directory is a path every host sees, as on a cluster with a shared file system.
///
/// mpirun runs on the first host and starts the others' ranks through the script's `exec`
/// (Open MPI's remote launcher, in place of ssh); only TCP carries MPI (`btl self,tcp` on
/// the hosts' eth0, no shared memory), as between machines.
final class NetnsHosts {
  static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("scripts/netns-hosts.sh")

  /// Why namespaces cannot be made here (not root, no iproute2, a sandbox that forbids
  /// them); nil when they can. Namespaces left by killed earlier runs are removed first.
  static let unavailableReason: String? = {
    guard FileManager.default.isExecutableFile(atPath: script.path) else { return "\(script.path) is missing" }
    _ = try? shell([script.path, "stale"])
    guard let check = try? shell([script.path, "check"]) else { return "cannot run \(script.path)" }
    return check.status == 0 ? nil : "network namespaces unavailable: \(check.output.trimmingCharacters(in: .whitespacesAndNewlines))"
  }()

  /// The prefix of this test process's namespaces: the script's `stale` removes those whose
  /// process is gone.
  static let name = "aepsl-\(getpid())"

  let hosts: [String]
  let hostfile: URL

  /// Makes `count` hosts (removing this process's earlier ones first).
  init(count: Int) throws {
    _ = try Self.shell([Self.script.path, "down", Self.name])
    let up = try Self.shell([Self.script.path, "up", Self.name, "\(count)"])
    guard up.status == 0 else {
      _ = try? Self.shell([Self.script.path, "down", Self.name])
      throw HostsError(text: "netns-hosts.sh up failed: \(up.output)")
    }
    hosts = up.output.split(separator: "\n").map(String.init)
    hostfile = FileManager.default.temporaryDirectory.appendingPathComponent("\(Self.name)-hostfile")
    try hosts.map { "\($0) slots=1\n" }.joined().write(to: hostfile, atomically: true, encoding: .utf8)
  }

  /// Removes the hosts and whatever still runs in them.
  func down() {
    _ = try? Self.shell([Self.script.path, "down", Self.name])
    try? FileManager.default.removeItem(at: hostfile)
  }

  /// Cuts (or reconnects) host `index`'s cable: its port on the bridge goes down, the host
  /// keeps its address and its processes, and no packet reaches it any more.
  func link(_ index: Int, up: Bool) throws {
    let r = try Self.shell([Self.script.path, "link", Self.name, "\(index)", up ? "up" : "down"])
    guard r.status == 0 else { throw HostsError(text: "netns-hosts.sh link failed: \(r.output)") }
  }

  /// mpirun on host 0 with one rank on each of the first `ranks` hosts, running `command`;
  /// `mca` adds Open MPI parameters, `environment` variables exported to every rank.
  func mpirun(ranks: Int, command: [String], mca: [(String, String)] = [], environment: [String: String] = [:]) -> Process {
    var launch = ["mpirun", "--hostfile", hostfile.path, "-np", "\(ranks)", "--bind-to", "none",
                  "--mca", "plm_rsh_agent", "\(Self.script.path) exec",
                  "--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "eth0", "--mca", "oob_tcp_if_include", "eth0"]
    for (k, v) in mca { launch += ["--mca", k, v] }
    for (k, v) in environment.sorted(by: { $0.key < $1.key }) { launch += ["-x", "\(k)=\(v)"] }
    if getuid() == 0 { launch.append("--allow-run-as-root") }
    let p = Process()
    p.executableURL = Self.script
    p.arguments = ["exec", hosts[0], (launch + command).map(Self.quoted).joined(separator: " ")]
    return p
  }

  /// `text` as one word for /bin/sh.
  static func quoted(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
  }

  struct HostsError: Error, CustomStringConvertible {
    var text: String
    var description: String { text }
  }

  /// Runs a command to its end; its status and output (stdout and stderr).
  @discardableResult
  static func shell(_ arguments: [String]) throws -> (status: Int32, output: String) {
    try runMerged(URL(fileURLWithPath: arguments[0]), Array(arguments.dropFirst()))
  }
}
