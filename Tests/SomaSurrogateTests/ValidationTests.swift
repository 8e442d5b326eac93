import SomaSurrogate
import Testing

@Suite("parameter validation and the registry")
struct ValidationTests {
  @Test func defaultsNeedNoTry() {
    // init() is not throwing: these compile without `try`.
    let s = S2NN()
    #expect(s.alpha == 4 && s.beta == 1 && s.epsilon == 1e-8)
    #expect(Sigmoid().alpha == 4)
    #expect(SquarewaveFourierSeries().n == 2)
  }

  @Test func defaultsMatchTheFixturesFirstCase() throws {
    // The first fixture case of every type uses braintools' defaults.
    var seen = Set<String>()
    for c in SurrogateFixture.shared.cases where seen.insert(c.name).inserted {
      let entry = try #require(SurrogateRegistry.entry(named: c.name))
      let defaults = Dictionary(uniqueKeysWithValues: entry.defaults.map { ($0.name, $0.value) })
      #expect(defaults == c.params, "\(c.name)")
    }
    #expect(seen.count == 18)
  }

  @Test func negativeAlphaNamesParameterAndRange() {
    #expect(throws: SurrogateError.self) { try S2NN(alpha: -1) }
    do {
      _ = try S2NN(alpha: -1)
    } catch {
      #expect(error.description == "S2NN: alpha must be > 0, got -1")
    }
  }

  @Test(
    "out-of-domain parameters are rejected",
    arguments: [
      ("Sigmoid", "alpha", 0.0), ("PiecewiseQuadratic", "alpha", -2), ("PiecewiseExp", "alpha", 0),
      ("SoftSign", "alpha", -1), ("Arctan", "alpha", 0), ("NonzeroSignLog", "alpha", -0.5),
      ("ERF", "alpha", 0), ("PiecewiseLeakyRelu", "w", 0), ("PiecewiseLeakyRelu", "c", -0.1),
      ("SquarewaveFourierSeries", "n", 0), ("SquarewaveFourierSeries", "n", 1.5),
      ("SquarewaveFourierSeries", "t_period", -8), ("S2NN", "beta", 0), ("S2NN", "epsilon", -1e-8),
      ("S2NN", "alpha", .nan), ("QPseudoSpike", "alpha", 0), ("LeakyRelu", "alpha", -0.1),
      ("LogTailedRelu", "alpha", -1), ("ReluGrad", "width", 0), ("GaussianGrad", "sigma", 0),
      ("MultiGaussianGrad", "s", -6), ("MultiGaussianGrad", "h", -0.1), ("InvSquareGrad", "alpha", 0),
      ("SlayerGrad", "alpha", -1), ("S2NN", "alpha", .infinity),
    ] as [(String, String, Double)])
  func rejected(_ name: String, _ parameter: String, _ value: Double) {
    do {
      _ = try SurrogateRegistry.make(name, parameters: [parameter: value])
      Issue.record("\(name)(\(parameter): \(value)) was accepted")
    } catch {
      guard case let .invalidParameter(surrogate, p, requirement, v) = error else {
        Issue.record("wrong error \(error)")
        return
      }
      #expect(surrogate == name)
      #expect(p == parameter)
      #expect(!requirement.isEmpty)
      #expect(v == value || (v.isNaN && value.isNaN))
      #expect(error.description.contains("\(parameter) must be \(requirement)"))
    }
  }

  @Test func typedInitialisersThrowTheSameErrors() {
    #expect(throws: SurrogateError.self) { try SquarewaveFourierSeries(n: 0) }
    #expect(throws: SurrogateError.self) { try MultiGaussianGrad(sigma: -1) }
    #expect(throws: SurrogateError.self) { try PiecewiseLeakyRelu(w: 0) }
    #expect(throws: Never.self) { try QPseudoSpike(alpha: 1) }
  }

  @Test func lookupAcceptsClassAndFunctionalNamesInAnyCase() throws {
    for spelling in ["S2NN", "s2nn", "S2nn"] {
      #expect(SurrogateRegistry.entry(named: spelling)?.name == "S2NN")
    }
    for spelling in ["PiecewiseQuadratic", "piecewisequadratic", "piecewise_quadratic", "PIECEWISE_QUADRATIC"] {
      #expect(SurrogateRegistry.entry(named: spelling)?.name == "PiecewiseQuadratic")
    }
    #expect(SurrogateRegistry.entry(named: "q_pseudo_spike")?.name == "QPseudoSpike")
    #expect(SurrogateRegistry.entry(named: "relu") == nil)
  }

  @Test func unknownNameListsKnownOnes() {
    #expect(throws: SurrogateError.self) { try SurrogateRegistry.make("relu") }
    do {
      _ = try SurrogateRegistry.make("relu")
    } catch {
      #expect(error.description.hasPrefix("unknown surrogate 'relu'"))
      #expect(error.description.contains("S2NN"))
      #expect(error.description.contains("SlayerGrad"))
    }
  }

  @Test func unknownParameterListsAcceptedOnes() {
    do {
      _ = try SurrogateRegistry.make("S2NN", parameters: ["gamma": 1])
      Issue.record("gamma was accepted")
    } catch {
      #expect(
        error == .unknownParameter(
          surrogate: "S2NN", parameter: "gamma", accepted: ["alpha", "beta", "epsilon"]))
      #expect(error.description == "S2NN has no parameter 'gamma'; accepted: alpha, beta, epsilon")
    }
  }

  @Test func parametersOverrideDefaultsAndKeepOrder() throws {
    let s = try SurrogateRegistry.make("squarewave_fourier_series", parameters: ["tPeriod": 6])
    #expect(s.parameters.map(\.name) == ["n", "t_period"])
    #expect(s.parameters.map(\.value) == [2, 6])
    let t = try #require(s as? SquarewaveFourierSeries)
    #expect(t.tPeriod == 6)
  }

  @Test func functionalSpellingsGiveTheSpikeAndValidate() throws {
    #expect(try s2nn(Float(-0.5)) == 0)
    #expect(try s2nn(0.0, alpha: 8) == 1)
    #expect(try sigmoid(Tensor<Double>([-1, 0, 2]), alpha: 4).scalars == [0, 1, 1])
    #expect(try erf(Float(-1e-7), alpha: 1) == 0)
    #expect(try qPseudoSpike(Tensor<Float>([3, -3])).scalars == [1, 0])
    #expect(throws: SurrogateError.self) { try s2nn(1.0, alpha: -1) }
    #expect(throws: SurrogateError.self) { try squarewaveFourierSeries(1.0, n: 0) }
  }
}
