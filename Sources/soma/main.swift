import SomaCLI

SomaCommand.main()
