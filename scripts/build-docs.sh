#!/usr/bin/env bash
# DocC documentation of AEPSLEngine, AEPSLCRF and AEPSLMethod without swift-docc-plugin:
# a release build that also writes symbol graphs, `docc convert` of each target's catalog
# (Sources/<target>/<target>.docc) and `docc merge` into one archive for static hosting,
# .build-docs/aepsl.doccarchive. Open it with
#   python3 -m http.server --directory .build-docs/aepsl.doccarchive 8000
# and http://localhost:8000/documentation/aepslmethod (or /aepslengine, /aepslcrf).
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
DOCC=${DOCC:-$(command -v docc || echo /opt/swift/usr/bin/docc)}
scratch=.build-docs
graphs=$PWD/$scratch/symbol-graphs
modules=(AEPSLEngine AEPSLCRF AEPSLMethod)
mkdir -p "$graphs"

# AEPSLPipeline depends on all three; its own scratch path, since the extra flags would
# otherwise rebuild .build or .build-test.
$SWIFT build -c release --scratch-path "$scratch" --target AEPSLPipeline \
  -Xswiftc -emit-symbol-graph -Xswiftc -emit-symbol-graph-dir -Xswiftc "$graphs"

archives=()
for m in "${modules[@]}"; do
  # One module's graphs per conversion: its own and its extensions of other modules' types.
  dir=$scratch/graphs-$m
  rm -rf "$dir" && mkdir -p "$dir"
  cp "$graphs/$m.symbols.json" "$dir/"
  find "$graphs" -name "$m@*.symbols.json" -exec cp {} "$dir/" \;
  rm -rf "$scratch/$m.doccarchive"
  "$DOCC" convert "Sources/$m/$m.docc" --additional-symbol-graph-dir "$dir" \
    --output-path "$scratch/$m.doccarchive" --fallback-display-name "$m" \
    --fallback-bundle-identifier "aepsl.$m" --transform-for-static-hosting --warnings-as-errors
  archives+=("$scratch/$m.doccarchive")
done
rm -rf "$scratch/aepsl.doccarchive"
"$DOCC" merge "${archives[@]}" --output-path "$scratch/aepsl.doccarchive" --synthesized-landing-page-name aepsl
echo "docs: $scratch/aepsl.doccarchive (python3 -m http.server --directory $scratch/aepsl.doccarchive 8000;"
echo "      then http://localhost:8000/documentation/aepslmethod)"
