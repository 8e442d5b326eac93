import Foundation
import SomaSurrogate
import Testing

/// Checks one surrogate against one fixture case in scalar type `T`: spike, derivative and
/// primitive, through the scalar API and through the Tensor API. Returns failure messages.
func mismatches<S: SurrogateGradient, T: TensorScalar>(
  _ s: S, _ c: SurrogateFixture.Case, x: [Double], as _: T.Type, tolerance: Tolerance,
  skip: (Double) -> Bool = { _ in false }
) -> [String] {
  var failures: [String] = []
  let xs = x.map { T($0) }
  let tensor = Tensor<T>(xs)
  let tSpike = s.spike(tensor).scalars
  let tDerivative = s.derivative(tensor).scalars
  let tPrimitive = s.primitive(tensor)?.scalars
  if (tPrimitive == nil) != (c.original == nil) {
    failures.append("primitive presence: got \(tPrimitive != nil), want \(c.original != nil)")
  }
  for i in xs.indices where !skip(x[i]) {
    func check(_ what: String, _ got: T?, _ ref: Double?) {
      guard let ref else { return }
      guard let got else { return failures.append("\(what)(\(x[i])) is nil") }
      if !tolerance.accepts(Double(got), ref) {
        failures.append("\(what)(\(x[i])) = \(got), want \(ref)")
      }
    }
    check("spike", s.spike(xs[i]), c.forward[i])
    check("tensor spike", tSpike[i], c.forward[i])
    check("derivative", s.derivative(xs[i]), c.gradient[i])
    check("tensor derivative", tDerivative[i], c.gradient[i])
    check("primitive", s.primitive(xs[i]), c.original?[i])
    check("tensor primitive", tPrimitive?[i], c.original?[i])
  }
  return failures
}

@Suite("braintools reference values")
struct FixtureTests {
  static let fixture = SurrogateFixture.shared

  @Test func fixtureHasAllCases() {
    #expect(Self.fixture.cases.count == 39)
    #expect(Self.fixture.x.count == 71)
    #expect(Set(Self.fixture.cases.map(\.name)).count == 18)
    #expect(Set(Self.fixture.cases.map(\.name)) == Set(SurrogateRegistry.all.map(\.name)))
  }

  @Test("Double matches to atol 1e-12, rtol 1e-10", arguments: 0..<39)
  func double(_ index: Int) throws {
    let c = Self.fixture.cases[index]
    let s = try SurrogateRegistry.make(c.name, parameters: c.params)
    let failures = mismatches(s, c, x: Self.fixture.x, as: Double.self, tolerance: .double)
    #expect(failures.isEmpty, "\(c.testDescription): \(failures.prefix(5))")
  }

  @Test("Float matches to atol 1e-7, rtol 1e-5 for |x| ≤ 50", arguments: 0..<39)
  func float(_ index: Int) throws {
    let c = Self.fixture.cases[index]
    let s = try SurrogateRegistry.make(c.name, parameters: c.params)
    // SquarewaveFourierSeries is exempt beyond |x| = 50 in Float (README); everyone else is
    // checked at every point, ±1000 included.
    let exempt = c.name == "SquarewaveFourierSeries"
    let failures = mismatches(
      s, c, x: Self.fixture.x, as: Float.self, tolerance: .float,
      skip: { exempt && Swift.abs($0) > 50 })
    #expect(failures.isEmpty, "\(c.testDescription): \(failures.prefix(5))")
  }

  @Test("SquarewaveFourierSeries in Float stays accurate beyond |x| = 50 too")
  func squarewaveBeyondFifty() throws {
    for c in Self.fixture.cases where c.name == "SquarewaveFourierSeries" {
      let s = try SurrogateRegistry.make(c.name, parameters: c.params)
      let failures = mismatches(s, c, x: Self.fixture.x, as: Float.self, tolerance: .float)
      #expect(failures.isEmpty, "\(c.testDescription): \(failures.prefix(5))")
    }
  }

  @Test("functional names resolve to the same surrogate", arguments: 0..<39)
  func functionalName(_ index: Int) throws {
    let c = Self.fixture.cases[index]
    let entry = try #require(SurrogateRegistry.entry(named: c.functional))
    #expect(entry.name == c.name)
    #expect(entry.functionalName == c.functional)
    #expect(entry.hasPrimitive == (c.original != nil))
  }
}
