import Foundation
import SomaSurrogate

/// `Fixtures/surrogates.json`: braintools 0.3.0 on JAX 0.10.2 in float64 (see Fixtures/SOURCE.txt).
/// Read at test time; no values are pasted into the tests.
struct SurrogateFixture: Sendable {
  struct Case: Sendable {
    var index: Int
    var name: String
    var functional: String
    var params: [String: Double]
    var forward: [Double]
    var gradient: [Double]
    var original: [Double]?

    var testDescription: String {
      let p = params.keys.sorted().map { "\($0)=\(params[$0]!)" }.joined(separator: ",")
      return "\(name)(\(p))"
    }
  }

  var x: [Double]
  var cases: [Case]

  static let shared: SurrogateFixture = {
    do { return try load() } catch { fatalError("cannot read surrogates.json: \(error)") }
  }()

  static func load() throws -> SurrogateFixture {
    guard
      let url = Bundle.module.url(
        forResource: "surrogates", withExtension: "json", subdirectory: "Fixtures")
    else { throw CocoaError(.fileNoSuchFile) }
    let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    let x = (root["x"] as! [NSNumber]).map(\.doubleValue)
    var cases: [Case] = []
    for (i, item) in (root["surrogates"] as! [[String: Any]]).enumerated() {
      func doubles(_ key: String) -> [Double]? {
        (item[key] as? [NSNumber])?.map(\.doubleValue)
      }
      let params = (item["params"] as! [String: NSNumber]).mapValues(\.doubleValue)
      cases.append(
        Case(
          index: i, name: item["name"] as! String, functional: item["functional"] as! String,
          params: params, forward: doubles("forward")!, gradient: doubles("gradient")!,
          original: doubles("original")))
    }
    return SurrogateFixture(x: x, cases: cases)
  }
}

/// The README's tolerance: |got − ref| ≤ atol + rtol·|ref|, and got finite.
struct Tolerance: Sendable {
  var atol: Double
  var rtol: Double
  static let double = Tolerance(atol: 1e-12, rtol: 1e-10)
  static let float = Tolerance(atol: 1e-7, rtol: 1e-5)

  func accepts(_ got: Double, _ ref: Double) -> Bool {
    got.isFinite && Swift.abs(got - ref) <= atol + rtol * Swift.abs(ref)
  }
}
