import Manifest
import Statistics

/// Why two items are in one duplicate group, strongest first.
public enum DuplicateLink: Sendable, Equatable, Comparable {
    /// Same SHA-256 of the file bytes.
    case identicalFile
    /// Same normalised caption (same word sequence, see `CaptionMetrics.wordSequenceHash`).
    case sameCaption
    /// Perceptual hashes within the threshold; `bits` is the largest distance over the frames.
    case nearDuplicate(bits: Int)

    public var reason: String {
        switch self {
        case .identicalFile: "identical file"
        case .sameCaption: "same caption"
        case .nearDuplicate: "near duplicate"
        }
    }

    public static func < (lhs: DuplicateLink, rhs: DuplicateLink) -> Bool {
        func rank(_ link: DuplicateLink) -> (Int, Int) {
            switch link {
            case .identicalFile: (0, 0)
            case .sameCaption: (1, 0)
            case .nearDuplicate(let bits): (2, bits)
            }
        }
        return rank(lhs) < rank(rhs)
    }
}

/// What duplicate detection needs to know about one item.
public struct DuplicateCandidate: Sendable {
    public var mediaType: MediaType
    public var digest: ContentDigest?
    public var captionHash: WordSequenceHash?
    /// Perceptual hashes (one per image, one per sampled frame of a video); empty when unknown.
    public var hashes: [UInt64]

    public init(mediaType: MediaType, digest: ContentDigest?, captionHash: WordSequenceHash?, hashes: [UInt64]) {
        self.mediaType = mediaType
        self.digest = digest
        self.captionHash = captionHash
        self.hashes = hashes
    }
}

/// Duplicate groups: connected components of the "is a duplicate of" relation (single linkage).
public struct DuplicateGroups: Sendable {
    /// The smallest candidate index of each candidate's group (itself for a singleton).
    public var root: [Int]
    /// Each candidate's strongest link to another member, and that member; nil for a singleton.
    public var link: [(kind: DuplicateLink, partner: Int)?]
    /// Pairs found per link kind (before grouping), for the summary.
    public var pairCounts: [String: Int]

    /// Members of each group with more than one member, keyed by root, members in index order.
    public var groups: [Int: [Int]] {
        var out: [Int: [Int]] = [:]
        for (index, root) in root.enumerated() where link[index] != nil { out[root, default: []].append(index) }
        return out
    }
}

public enum DuplicateFinder {
    /// Groups candidates linked by an identical file, an identical normalised caption (when
    /// `captions`), or perceptual hashes within `bits` (images with images, videos with videos;
    /// videos only when every sampled frame is within `bits`).
    public static func find(_ candidates: [DuplicateCandidate], captions: Bool, bits: Int?) -> DuplicateGroups {
        var parent = Array(candidates.indices)
        var link: [(kind: DuplicateLink, partner: Int)?] = Array(repeating: nil, count: candidates.count)
        var pairCounts: [String: Int] = [:]

        func find(_ x: Int) -> Int {
            var x = x
            while parent[x] != x {
                parent[x] = parent[parent[x]]
                x = parent[x]
            }
            return x
        }
        func connect(_ a: Int, _ b: Int, _ kind: DuplicateLink) {
            pairCounts[kind.reason, default: 0] += 1
            for (member, partner) in [(a, b), (b, a)] {
                if let current = link[member],
                    current.kind < kind || (current.kind == kind && current.partner < partner)
                {
                    continue
                }
                link[member] = (kind, partner)
            }
            let ra = find(a)
            let rb = find(b)
            if ra != rb { parent[max(ra, rb)] = min(ra, rb) }
        }

        // Identical files: every later copy links to the first.
        var firstWithDigest: [ContentDigest: Int] = [:]
        for (index, candidate) in candidates.enumerated() {
            guard let digest = candidate.digest else { continue }
            if let first = firstWithDigest[digest] {
                connect(first, index, .identicalFile)
            } else {
                firstWithDigest[digest] = index
            }
        }
        // Same caption.
        if captions {
            var firstWithCaption: [WordSequenceHash: Int] = [:]
            for (index, candidate) in candidates.enumerated() {
                guard let hash = candidate.captionHash else { continue }
                if let first = firstWithCaption[hash] {
                    connect(first, index, .sameCaption)
                } else {
                    firstWithCaption[hash] = index
                }
            }
        }
        // Near duplicates, per media type, through the multi-index.
        if let bits {
            for type in MediaType.allCases {
                let members = candidates.indices.filter {
                    candidates[$0].mediaType == type && !candidates[$0].hashes.isEmpty
                }
                guard members.count > 1 else { continue }
                let keys = members.map { candidates[$0].hashes[candidates[$0].hashes.count / 2] }
                let index = HammingIndex(keys)
                var largest: [Int: Int] = [:]
                let pairs = index.pairs(within: bits) { i, j in
                    let a = candidates[members[i]].hashes
                    let b = candidates[members[j]].hashes
                    guard a.count == b.count else { return false }
                    var worst = 0
                    for k in a.indices {
                        let distance = PerceptualHash.distance(a[k], b[k])
                        if distance > bits { return false }
                        worst = max(worst, distance)
                    }
                    largest[i &* members.count &+ j] = worst
                    return true
                }
                for pair in pairs {
                    let worst = largest[pair.first &* members.count &+ pair.second] ?? pair.distance
                    connect(members[pair.first], members[pair.second], .nearDuplicate(bits: worst))
                }
            }
        }
        let roots = candidates.indices.map { find($0) }
        return DuplicateGroups(root: roots, link: link, pairCounts: pairCounts)
    }
}
