import Support

/// Writes Korean-looking captions with the archive's statistics: about 106 words and 440
/// characters on average (min 125 characters), the report's top words at their frequencies, a
/// Zipf-shaped core vocabulary and a long tail of rare words (corpus TTR near 0.027).
struct CaptionGenerator {
    /// Real words common in archive captions; the core vocabulary continues with generated ones.
    static let commonWords: [String] = [
        "모습이", "모습을", "장면이", "장면을", "화면에", "촬영한", "촬영된", "보인다", "보이는", "담겨", "담은", "함께",
        "거리", "거리에서", "마을", "마을의", "도시", "도로", "건물", "건물이", "풍경", "풍경이", "하늘", "바다", "산",
        "나무", "나무가", "자동차", "시민들이", "관광객들이", "어린이들이", "아이들이", "주민들이", "학생들이", "전통",
        "전통적인", "문화", "문화를", "역사", "역사적", "축제", "축제가", "행사", "행사가", "공연", "공연을", "무대",
        "무대에서", "사진", "영상", "자료", "자료는", "기록", "기록한", "당시", "당시의", "현장", "현장에서", "사고",
        "사고가", "사건", "소방관들이", "경찰이", "모여", "모여서", "걷고", "서", "앉아", "바라보고", "이야기를",
        "나누고", "웃으며", "손을", "흔들며", "입은", "옷을", "한복을", "전시", "전시된", "박물관", "궁궐", "사찰",
        "탑", "문화재", "유산", "무형", "유형", "장인이", "제작하는", "과정을", "보여주는", "설명하는", "그리고",
        "또한", "이", "그", "저", "및", "등", "중", "위", "아래", "앞", "뒤", "옆", "안", "밖", "가운데", "주변",
        "넓은", "높은", "작은", "큰", "오래된", "새로운", "밝은", "어두운", "푸른", "붉은", "하얀", "검은", "많은",
        "다양한", "아름다운", "조용한", "활기찬", "1980년대", "1990년대", "2000년대", "서울", "부산", "제주", "경주",
        "전주", "안동", "강릉", "한강", "남산", "광화문", "명동", "시장", "시장에서", "상인들이", "물건을", "팔고",
        "사고", "음식을", "먹고", "만들고", "준비하는", "진행되는", "열린", "열리는", "참가한", "참여한", "MBC",
        "뉴스", "방송", "카메라", "TV",
    ]

    /// Syllables the generated words are made of.
    static let syllables: [String] = Array(
        "가나다라마바사아자차카타파하고노도로모보소오조초토포호구누두루무부수우주추투푸후기니디리미비시이지치키티피히개내대래매배새애재채태패해거너더러머버서어저처터퍼허경공관국군권규근금기길김남녀농단담당대덕도동두등라락란람래량"
            + "려력련령례로록론룡류륙률리림마만말망매맥면명모목몽묘무문물미민밀박반발방배백번범법변별병보복본봉부북분불비빈사산살삼상새색생서석선설섬성세소속손송수숙순술숭습승시식신실심아악안암압앙애야약양어억언엄업여역연열"
            + "염엽영예오옥온옹완왕외요욕용우운웅원월위유육윤은을음읍응의이익인일임입자작잔잠장재저적전절점정제조족존종좌주죽준중즉증지직진질집차착찬참창채책처천철첨청체초촉촌총최추축춘출충취측층치칙친칠침쾌타탁탄탈탐탑탕태"
            + "택토통퇴투특파판팔패편평폐포폭표품풍피필하학한할함합항해핵행향허헌험혁현혈협형혜호혹혼홍화확환활황회획효후훈휘휴흉흑흥희"
    ).map { String($0) }
    static let particles = [
        "", "", "", "이", "가", "을", "를", "은", "는", "의", "에", "에서", "으로", "와", "과", "도", "하는", "한", "된", "하며",
    ]

    let coreSize = 40_000
    /// Share of words drawn from the long tail of rare words.
    let tailShare = 0.025
    private var topCumulative: [Double]
    private var topTotal: Double

    init() {
        var cumulative: [Double] = []
        var sum = 0.0
        for entry in ArchiveShape.topWords {
            sum += entry.count / ArchiveShape.trainWords
            cumulative.append(sum)
        }
        topCumulative = cumulative
        topTotal = sum
    }

    /// The core word of Zipf rank `rank` (0-based), deterministic.
    func coreWord(_ rank: Int) -> String {
        if rank < Self.commonWords.count { return Self.commonWords[rank] }
        var value = rank &* 2_654_435_761 % 1_000_003
        let length = 2 + rank % 2
        var word = ""
        for _ in 0..<length {
            word += Self.syllables[value % Self.syllables.count]
            value /= Self.syllables.count
            value = value &* 31 &+ rank
        }
        return word + Self.particles[rank % Self.particles.count]
    }

    func word(_ random: inout SeededRandom) -> String {
        let u = random.unit()
        if u < topTotal {
            let index = topCumulative.firstIndex { u < $0 } ?? 0
            return ArchiveShape.topWords[index].word
        }
        if u < topTotal + tailShare {
            // A rare word: random syllables, practically never repeated.
            var word = ""
            for _ in 0..<(2 + random.below(3)) { word += Self.syllables[random.below(Self.syllables.count)] }
            return word + Self.particles[random.below(Self.particles.count)]
        }
        // Zipf-Mandelbrot (s = 1, q = 14) over the core vocabulary, so that no core word outranks
        // the report's top ten: rank + q is log-uniform.
        let q = 14.0
        let rank = Int(exp(log(q) + random.unit() * (log(Double(coreSize) + q) - log(q))) - q)
        return coreWord(max(0, min(coreSize - 1, rank)))
    }

    /// A caption of about `words` words, at least 125 characters long.
    func caption(words: Int, random: inout SeededRandom) -> String {
        var text = ""
        var sentenceLength = 0
        var count = 0
        // Captions come back to their subject: four topic words make up about 12% of the words,
        // which brings the per-caption type-token ratio near the archive's 0.85.
        let topics = (0..<4).map { _ in word(&random) }
        while count < words || text.unicodeScalars.count < 125 {
            if !text.isEmpty { text += " " }
            let u = random.unit()
            if u < 0.12 {
                text += topics[random.below(topics.count)]
                count += 1
            } else if u < 0.124 {
                text += "\"" + word(&random) + " " + word(&random) + "\""
                count += 2
            } else {
                text += word(&random)
                count += 1
            }
            sentenceLength += 1
            if sentenceLength >= 9 + random.below(8) {
                text += random.unit() < 0.85 ? "." : ","
                if random.unit() < 0.002 { text += "\n" }
                sentenceLength = 0
            }
        }
        if !text.hasSuffix(".") { text += "." }
        return text
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
