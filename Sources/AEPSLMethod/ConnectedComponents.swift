/// The 8-connected components of a pixel mask, for rules that judge a region as a whole.
enum ConnectedComponents {
  /// Calls `body` once per component of the set pixels of `region` (a `width`-wide image),
  /// with the component's pixel indices.
  static func forEach(in region: [Bool], width: Int, _ body: ([Int]) -> Void) {
    let height = region.count / width
    var seen = [Bool](repeating: false, count: region.count)
    var component: [Int] = []
    for start in region.indices where region[start] && !seen[start] {
      component.removeAll(keepingCapacity: true)
      component.append(start)
      seen[start] = true
      var next = 0
      while next < component.count {
        let p = component[next]
        next += 1
        let (x, y) = (p % width, p / width)
        for ny in max(0, y - 1)...min(height - 1, y + 1) {
          for nx in max(0, x - 1)...min(width - 1, x + 1) where region[ny * width + nx] && !seen[ny * width + nx] {
            seen[ny * width + nx] = true
            component.append(ny * width + nx)
          }
        }
      }
      body(component)
    }
  }
}
