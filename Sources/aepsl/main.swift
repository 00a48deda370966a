import AEPSLEngine
print("aepsl")
