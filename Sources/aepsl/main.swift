import AEPSLCommands
import ArgumentParser

AEPSL.main()
