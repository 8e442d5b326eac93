// Defines a spiking network with Soma's layer API and trains it on Fashion-MNIST with the
// library's training loop (the loop `soma train` runs). Needs `apt-get install
// dataset-fashion-mnist`. Run: swift run -c release FashionMNISTMLP [epochs]
import Soma

let epochs = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 5
let out = "runs/fashion-mnist-mlp"

// 1. The network: 784 → 256 → 10, LIF neurons trained through the S2NN surrogate gradient.
var rng = SomaRandom(seed: 42)
let net = try Sequential<Float> {
  Linear<Float>(784, 256, using: &rng)
  try LIF(beta: 0.95, threshold: 1, surrogate: S2NN())
  Linear<Float>(256, 10, using: &rng)
  try LIF(beta: 0.95, threshold: 1, surrogate: S2NN())
}

// 2. Lower it onto fused kernels with a loss, and make an optimizer for its parameters.
let model = try net.compiled(loss: .spikeCountCrossEntropy)
let adam = Adam(parameters: net.parameterVariables, learningRate: 2e-3)

// 3. The training loop: latency-coded input (T = 25), shuffled batches of 128, test accuracy
//    after every epoch, and final/best checkpoints, metrics.csv and curves.svg in `out`.
let data = try FashionMNIST()
let trainer = Trainer(
  model: model, optimizer: adam, encoding: .latency(timeSteps: 25), epochs: epochs,
  batchSize: 128, outputDirectory: out)
trainer.overwrite = true  // replace this example's previous run
let steps = epochs * ((data.train.count + 127) / 128)
trainer.schedule = CosineAnnealing(initial: 2e-3, totalSteps: steps)  // set before every step
Trainer.installInterruptHandler()  // Ctrl-C: finish the step, save, stop

let history = try trainer.fit(train: data.train, test: data.test)

// 4. A checkpoint records the network: the file alone rebuilds and evaluates it.
let best = try Checkpoint.load(out + "/best.safetensors")
let check = Trainer.evaluate(
  try best.compiled(), on: data.test, encoding: .latency(timeSteps: best.timeSteps))
print("best epoch's test accuracy:", history.map(\.testAccuracy).max()!, "reloaded:", check.accuracy)
