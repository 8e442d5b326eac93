@_exported import SomaTensor
@_exported import SomaSurrogate
@_exported import SomaNN
@_exported import SomaData
@_exported import SomaTrain
