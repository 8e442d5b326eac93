import SomaCLI

// This process is the soma tool, so it can run itself again: `soma import` reads each NIR file
// in such a child, which the HDF5 library may crash or hang without taking the tool with it.
SomaCommand.readNIRFilesInChildProcess()
SomaCommand.main()
