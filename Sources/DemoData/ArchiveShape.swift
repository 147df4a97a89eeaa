/// The shape of the MBC archive as the seed report measured it (all_data.csv, 199,994 rows):
/// the shares a demo manifest reproduces.
public enum ArchiveShape {
    /// Images : videos = 99,994 : 100,000.
    public static let imageShare = 99_994.0 / 199_994.0

    /// Resolutions with their counts in all_data.csv; "other" (1,670) is spread over real broadcast sizes.
    public static let resolutions: [(width: Int, height: Int, weight: Double)] = [
        (1920, 1080, 155_552), (720, 512, 31_048), (1280, 720, 11_724),
        (1440, 1080, 700), (720, 480, 500), (1080, 1920, 300), (3840, 2160, 170),
    ]

    /// The eight categories with their counts in all_data.csv.
    public static let categories: [(name: String, weight: Double)] = [
        ("생활/문화", 57_300), ("역사/사회", 36_158), ("자연/풍경", 33_819), ("공간/건축", 32_940),
        ("사건/사고", 21_209), ("축제", 14_394), ("유형문화유산", 2_220), ("무형문화유산", 1_954),
    ]

    /// Video duration buckets [0,10), [10,20), [20,30), [30,60), [60,∞) with their counts
    /// (20 / 43,609 / 49,360 / 5,919 / 1,092); mean 23.17 s, min 2.97 s, max 2,383.65 s.
    public static let durationBuckets: [(lower: Double, upper: Double, weight: Double)] = [
        (2.97, 10, 20), (10, 20, 43_609), (20, 30, 49_360), (30, 60, 5_919), (60, 2_383.65, 1_092),
    ]

    /// The ten most frequent words of all_train.csv with their counts (of 18,108,519 words).
    public static let topWords: [(word: String, count: Double)] = [
        ("있다", 551_422), ("있는", 202_540), ("있으며", 148_873), ("여러", 145_152), ("사람이", 142_520),
        ("사람들이", 142_331), ("있습니다", 141_680), ("한", 139_669), ("자료로", 120_752), ("수", 105_260),
    ]
    public static let trainWords = 18_108_519.0
}
