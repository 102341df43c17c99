// Tests of modalities::AnalyzeMedia and ContentHash on media the tests generate with the
// `ffmpeg` command-line tool (skipped when it is not on PATH): container facts, sampling across
// short and long GOPs, variable frame rate, rotation, shot cuts, audio-only and video-only
// files, a tracker module from ../shared/media, content hashes, and the files that fail.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "modalities/media.h"
#include "tests/test_util.h"

namespace mosaic {
namespace {

namespace fs = std::filesystem;
using modalities::AnalyzeMedia;
using modalities::ContentHash;
using modalities::kAudioFeatureDim;
using modalities::kVisualFeatureDim;
using modalities::MediaAnalysis;
using testing::TempDir;
using testing::WriteFile;
using testing::HaveFfmpeg;
using testing::Quote;



// Runs `ffmpeg <args>` quietly; false (with ffmpeg's stderr in the failure) when it fails.
::testing::AssertionResult Ffmpeg(const TempDir& dir, const std::string& args) {
  const std::string log = dir / "ffmpeg.log";
  const std::string cmd = "ffmpeg -hide_banner -nostdin -loglevel error -y " + args + " >" + Quote(log) + " 2>&1";
  const int status = std::system(cmd.c_str());
  if (status != 0) {
    return ::testing::AssertionFailure() << "ffmpeg failed (" << status << "): " << cmd << "\n"
                                         << testing::ReadFile(log);
  }
  return ::testing::AssertionSuccess();
}

// The usual test clip: `seconds` of testsrc2 at 320x240 and 12 fps in H.264, a sine in AAC.
std::string TestClipArgs(double seconds, int gop, const std::string& out) {
  const std::string d = std::to_string(seconds);
  return "-f lavfi -i testsrc2=size=320x240:rate=12:duration=" + d + " -f lavfi -i sine=frequency=440:duration=" + d +
         " -c:v libx264 -preset veryfast -pix_fmt yuv420p -g " + std::to_string(gop) +
         " -c:a aac -b:a 64k -shortest " + Quote(out);
}

// AnalyzeMedia with the default options; throws (failing the test) when it returns an error.
MediaAnalysis Analyze(const std::string& path) {
  MediaAnalysis a;
  const Status s = AnalyzeMedia(path, modalities::AnalyzeOptions(), &a);
  if (!s.ok()) throw std::runtime_error(path + ": " + s.ToString());
  return a;
}

// ContentHash; throws (failing the test) when it returns an error.
std::string Hash(const std::string& path) {
  std::string hash;
  const Status s = ContentHash(path, &hash);
  if (!s.ok()) throw std::runtime_error(path + ": " + s.ToString());
  return hash;
}

bool AllFinite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

class ModalitiesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveFfmpeg()) GTEST_SKIP() << "the ffmpeg command-line tool is not on PATH";
  }
  TempDir tmp_;
};

// ---------------------------------------------------------------------------------------------
// Video with audio

TEST_F(ModalitiesTest, H264AacClipHasBothModalities) {
  const std::string path = tmp_ / "clip.mp4";
  ASSERT_TRUE(Ffmpeg(tmp_, TestClipArgs(6, 12, path)));
  const MediaAnalysis a = Analyze(path);
  const auto& info = a.info;
  EXPECT_NE(info.container.find("mp4"), std::string::npos) << info.container;
  EXPECT_TRUE(info.has_video);
  EXPECT_TRUE(info.has_audio);
  EXPECT_NEAR(info.duration_s, 6.0, 0.15);
  EXPECT_EQ(info.size_bytes, int64_t(fs::file_size(path)));
  EXPECT_EQ(info.video_codec, "h264");
  EXPECT_EQ(info.audio_codec, "aac");
  EXPECT_EQ(info.width, 320);
  EXPECT_EQ(info.height, 240);
  EXPECT_NEAR(info.fps, 12.0, 0.01);
  EXPECT_EQ(info.rotation, 0);
  EXPECT_EQ(info.sample_rate, 44100);
  EXPECT_EQ(info.channels, 1);

  ASSERT_TRUE(a.visual.has_value());
  ASSERT_TRUE(a.audio.has_value());
  EXPECT_GE(a.visual->samples, 3);
  EXPECT_GE(a.keyframes_decoded, 3);
  ASSERT_EQ(a.visual->vector.size(), size_t(kVisualFeatureDim));
  ASSERT_EQ(a.audio->vector.size(), size_t(kAudioFeatureDim));
  EXPECT_TRUE(AllFinite(a.visual->vector));
  EXPECT_TRUE(AllFinite(a.audio->vector));
  EXPECT_NEAR(a.audio->duration_s, 6.0, 0.15);
  EXPECT_GT(a.visual->brightness, 0.0);
  EXPECT_LE(a.visual->brightness, 1.0);
  EXPECT_GT(a.visual->colourfulness, 0.0);  // testsrc2 is colour bars
  // A steady 440 Hz tone is loud, never silent, and its centroid sits near 440 Hz.
  EXPECT_LT(a.audio->silence_ratio, 0.05);
  EXPECT_GT(a.audio->rms_db, -30.0);
  EXPECT_NEAR(a.audio->spectral_centroid_hz, 440.0, 150.0);
}

TEST_F(ModalitiesTest, AnalysisIsDeterministic) {
  const std::string path = tmp_ / "clip.mp4";
  ASSERT_TRUE(Ffmpeg(tmp_, TestClipArgs(4, 12, path)));
  const MediaAnalysis a = Analyze(path), b = Analyze(path);
  ASSERT_TRUE(a.visual && b.visual && a.audio && b.audio);
  EXPECT_EQ(a.visual->vector, b.visual->vector);
  EXPECT_EQ(a.audio->vector, b.audio->vector);
  EXPECT_EQ(a.keyframes_decoded, b.keyframes_decoded);
}

// With a single keyframe the keyframe pass sees one frame; the rest of the samples come from
// seeking and decoding into the GOP.
TEST_F(ModalitiesTest, LongGopIsFilledBySeeking) {
  const std::string path = tmp_ / "long-gop.mp4";
  ASSERT_TRUE(Ffmpeg(tmp_, TestClipArgs(6, 1000, path) + " -x264-params scenecut=0"));
  const MediaAnalysis a = Analyze(path);
  ASSERT_TRUE(a.visual.has_value());
  EXPECT_GE(a.visual->samples, 3);
  EXPECT_GT(a.frames_decoded_for_gaps, 0);
  EXPECT_LT(a.keyframes_decoded, 3) << "the clip was meant to have one keyframe";
  EXPECT_TRUE(AllFinite(a.visual->vector));
  EXPECT_NEAR(a.info.duration_s, 6.0, 0.15);
}

// ---------------------------------------------------------------------------------------------
// One modality

TEST_F(ModalitiesTest, VideoOnlyFileHasNoAudio) {
  const std::string path = tmp_ / "silent.mp4";
  ASSERT_TRUE(Ffmpeg(tmp_, "-f lavfi -i testsrc2=size=320x240:rate=12:duration=4 -c:v libx264 -preset veryfast "
                           "-pix_fmt yuv420p -g 12 " + Quote(path)));
  const MediaAnalysis a = Analyze(path);
  EXPECT_TRUE(a.info.has_video);
  EXPECT_FALSE(a.info.has_audio);
  EXPECT_FALSE(a.audio.has_value());
  EXPECT_EQ(a.info.audio_codec, "");
  ASSERT_TRUE(a.visual.has_value());
  EXPECT_EQ(a.visual->vector.size(), size_t(kVisualFeatureDim));
  EXPECT_NEAR(a.info.duration_s, 4.0, 0.15);
}

TEST_F(ModalitiesTest, AudioOnlyFileHasNoVisual) {
  const std::string path = tmp_ / "tone.ogg";
  ASSERT_TRUE(Ffmpeg(tmp_, "-f lavfi -i sine=frequency=330:duration=3 -c:a libvorbis " + Quote(path)));
  const MediaAnalysis a = Analyze(path);
  EXPECT_EQ(a.info.container, "ogg");
  EXPECT_FALSE(a.info.has_video);
  EXPECT_TRUE(a.info.has_audio);
  EXPECT_FALSE(a.visual.has_value());
  EXPECT_EQ(a.keyframes_decoded, 0);
  EXPECT_EQ(a.info.audio_codec, "vorbis");
  ASSERT_TRUE(a.audio.has_value());
  EXPECT_EQ(a.audio->vector.size(), size_t(kAudioFeatureDim));
  EXPECT_TRUE(AllFinite(a.audio->vector));
  EXPECT_NEAR(a.info.duration_s, 3.0, 0.1);
}

TEST_F(ModalitiesTest, WavIsAudioOnly) {
  const std::string path = tmp_ / "tone.wav";
  ASSERT_TRUE(Ffmpeg(tmp_, "-f lavfi -i sine=frequency=550:sample_rate=22050:duration=2 " + Quote(path)));
  const MediaAnalysis a = Analyze(path);
  EXPECT_FALSE(a.info.has_video);
  EXPECT_EQ(a.info.audio_codec, "pcm_s16le");
  EXPECT_EQ(a.info.sample_rate, 22050);
  ASSERT_TRUE(a.audio.has_value());
  EXPECT_NEAR(a.audio->duration_s, 2.0, 0.05);
  EXPECT_NEAR(a.audio->spectral_centroid_hz, 550.0, 150.0);
}

// ---------------------------------------------------------------------------------------------
// Unusual timing and geometry

TEST_F(ModalitiesTest, VeryShortClipWorks) {
  const std::string path = tmp_ / "short.mp4";
  ASSERT_TRUE(Ffmpeg(tmp_, TestClipArgs(0.4, 12, path)));
  const MediaAnalysis a = Analyze(path);
  EXPECT_TRUE(a.info.has_video);
  EXPECT_TRUE(a.info.has_audio);
  EXPECT_GT(a.info.duration_s, 0.3);
  EXPECT_LT(a.info.duration_s, 0.6);
  ASSERT_TRUE(a.visual.has_value());
  ASSERT_TRUE(a.audio.has_value());
  EXPECT_GE(a.visual->samples, 1);
  EXPECT_EQ(a.visual->vector.size(), size_t(kVisualFeatureDim));
  EXPECT_EQ(a.audio->vector.size(), size_t(kAudioFeatureDim));
  EXPECT_TRUE(AllFinite(a.visual->vector));
  EXPECT_TRUE(AllFinite(a.audio->vector));
}

// 30 frames at 10 fps, then the rest at 30 fps: timestamps are not evenly spaced.
TEST_F(ModalitiesTest, VariableFrameRateWorks) {
  const std::string path = tmp_ / "vfr.mp4";
  ASSERT_TRUE(Ffmpeg(tmp_, "-f lavfi -i testsrc2=size=320x240:rate=30:duration=4 "
                           "-vf \"setpts='if(lt(N,30),N/10,1+(N-30)/30)/TB'\" -fps_mode vfr "
                           "-c:v libx264 -preset veryfast -pix_fmt yuv420p -g 15 " + Quote(path)));
  const MediaAnalysis a = Analyze(path);
  EXPECT_TRUE(a.info.has_video);
  EXPECT_GT(a.info.duration_s, 3.5);
  EXPECT_LT(a.info.duration_s, 4.5);
  ASSERT_TRUE(a.visual.has_value());
  EXPECT_GE(a.visual->samples, 2);
  EXPECT_TRUE(AllFinite(a.visual->vector));
  EXPECT_GT(a.info.fps, 0.0);
}

// Rotation: the clockwise turn that displays the frames upright, from the stream's display
// matrix, written here by stream copy with the `rotate` tag. The direction a `rotate` tag ends
// up meaning depends on the ffmpeg tool's version: FFmpeg 5.1 writes `rotate=90` as a matrix
// that FFmpeg itself displays turned 90 degrees counter-clockwise (ffprobe: "displaymatrix:
// rotation of 90.00 degrees", i.e. 270 clockwise), older versions as 90 clockwise. So the
// expected value is what the ffmpeg tool's own autorotation does to the first frame, found by
// comparing its output with the plain frame turned each way.
class RotationTest : public ModalitiesTest, public ::testing::WithParamInterface<int> {
 protected:
  // Clockwise degrees (0, 90, 180, 270) that ffmpeg's autorotation turns `turned`'s first frame
  // by, compared with `plain`'s first frame; -1 when none matches.
  int FfmpegDisplayRotation(const std::string& plain, const std::string& turned) {
    const std::string shown = tmp_ / "shown.gray";
    if (!Ffmpeg(tmp_, "-i " + Quote(turned) + " -frames:v 1 -f rawvideo -pix_fmt gray " + Quote(shown))) return -1;
    const std::pair<int, const char*> turns[] = {
        {0, "null"}, {90, "transpose=clock"}, {180, "hflip,vflip"}, {270, "transpose=cclock"}};
    for (const auto& [degrees, filter] : turns) {
      const std::string candidate = tmp_ / ("turn" + std::to_string(degrees) + ".gray");
      if (!Ffmpeg(tmp_, "-noautorotate -i " + Quote(plain) + " -frames:v 1 -vf " + filter +
                            " -f rawvideo -pix_fmt gray " + Quote(candidate))) {
        return -1;
      }
      if (testing::ReadFile(candidate) == testing::ReadFile(shown)) return degrees;
    }
    return -1;
  }
};

TEST_P(RotationTest, DisplayMatrixTurnsTheDisplaySize) {
  const int tag = GetParam();
  const std::string plain = tmp_ / "plain.mp4", turned = tmp_ / "turned.mp4";
  ASSERT_TRUE(Ffmpeg(tmp_, "-f lavfi -i testsrc2=size=320x240:rate=12:duration=2 -c:v libx264 -preset veryfast "
                           "-pix_fmt yuv420p -g 12 " + Quote(plain)));
  ASSERT_TRUE(Ffmpeg(tmp_, "-i " + Quote(plain) + " -c copy -metadata:s:v:0 rotate=" + std::to_string(tag) + " " +
                           Quote(turned)));
  const int expected = FfmpegDisplayRotation(plain, turned);
  ASSERT_NE(expected, -1) << "ffmpeg's autorotated frame matches no turn of the plain frame";
  // Whatever the direction, a tag of 90 or 270 is a quarter turn and 180 a half turn.
  if (tag == 180) {
    EXPECT_EQ(expected, 180);
  } else {
    EXPECT_TRUE(expected == 90 || expected == 270) << expected;
  }

  const MediaAnalysis a = Analyze(turned);
  EXPECT_EQ(a.info.rotation, expected) << "rotate=" << tag;
  if (tag == 180) {
    EXPECT_EQ(a.info.width, 320);
    EXPECT_EQ(a.info.height, 240);
  } else {
    EXPECT_EQ(a.info.width, 240);
    EXPECT_EQ(a.info.height, 320);
  }
  ASSERT_TRUE(a.visual.has_value());
  EXPECT_TRUE(AllFinite(a.visual->vector));

  const MediaAnalysis b = Analyze(plain);
  EXPECT_EQ(b.info.rotation, 0);
  EXPECT_EQ(b.info.width, 320);
  EXPECT_EQ(b.info.height, 240);
}

INSTANTIATE_TEST_SUITE_P(Tags, RotationTest, ::testing::Values(90, 180, 270),
                         [](const ::testing::TestParamInfo<int>& p) { return "rotate" + std::to_string(p.param); });

// Red for 4 s, then blue for 4 s, a keyframe every second: at least one content change.
TEST_F(ModalitiesTest, TwoDifferentHalvesGiveACut) {
  const std::string path = tmp_ / "halves.mp4";
  ASSERT_TRUE(Ffmpeg(tmp_, "-f lavfi -i color=c=red:size=320x240:rate=12:duration=4 "
                           "-f lavfi -i color=c=blue:size=320x240:rate=12:duration=4 "
                           "-filter_complex \"[0:v][1:v]concat=n=2:v=1:a=0\" "
                           "-c:v libx264 -preset veryfast -pix_fmt yuv420p -g 12 " + Quote(path)));
  const MediaAnalysis a = Analyze(path);
  ASSERT_TRUE(a.visual.has_value());
  EXPECT_NEAR(a.info.duration_s, 8.0, 0.2);
  EXPECT_GE(a.visual->samples, 3);
  EXPECT_GE(a.visual->cuts, 1);
  EXPECT_GT(a.visual->cut_rate_per_min, 0.0);
  EXPECT_TRUE(AllFinite(a.visual->vector));

  // A single colour throughout has none.
  const std::string still = tmp_ / "still.mp4";
  ASSERT_TRUE(Ffmpeg(tmp_, "-f lavfi -i color=c=red:size=320x240:rate=12:duration=8 "
                           "-c:v libx264 -preset veryfast -pix_fmt yuv420p -g 12 " + Quote(still)));
  const MediaAnalysis b = Analyze(still);
  ASSERT_TRUE(b.visual.has_value());
  EXPECT_EQ(b.visual->cuts, 0);
}

// ---------------------------------------------------------------------------------------------
// A tracker module (decoded through libopenmpt) from ../shared/media.

TEST(ModalitiesShared, TrackerModuleHasAudioAndTempo) {
  const fs::path media = fs::path(MOSAIC_SHARED_DIR "/media");
  if (!fs::exists(media)) GTEST_SKIP() << media << " is absent";
  std::vector<std::string> modules;
  for (const char* name : {"pingus-data/pingus-1.it", "fb-music-high/frozen-mainzik-2p.xm"}) {
    if (fs::exists(media / name)) modules.push_back((media / name).string());
  }
  if (modules.empty()) GTEST_SKIP() << "no .it or .xm module under " << media;
  for (const auto& path : modules) {
    SCOPED_TRACE(path);
    const MediaAnalysis a = Analyze(path);
    EXPECT_TRUE(a.info.has_audio);
    EXPECT_FALSE(a.info.has_video);
    EXPECT_GT(a.info.duration_s, 10.0);
    ASSERT_TRUE(a.audio.has_value());
    EXPECT_GT(a.audio->tempo_bpm, 0.0);
    EXPECT_EQ(a.audio->vector.size(), size_t(kAudioFeatureDim));
    EXPECT_TRUE(AllFinite(a.audio->vector));
  }
}

// ---------------------------------------------------------------------------------------------
// ContentHash

TEST(ContentHashTest, EqualsSha256sumAndChangesWithOneByte) {
  if (std::system("command -v sha256sum >/dev/null 2>&1") != 0) GTEST_SKIP() << "sha256sum is not on PATH";
  TempDir tmp;
  std::string content;
  content.reserve(3u << 20);
  for (uint32_t i = 0; i < (3u << 20) + 17; ++i) content.push_back(char((i * 7919u) >> 3));  // spans read buffers
  const std::string path = tmp / "data.bin";
  WriteFile(path, content);
  ASSERT_EQ(std::system(("sha256sum " + Quote(path) + " >" + Quote(tmp / "sum.txt")).c_str()), 0);
  const std::string expected = testing::ReadFile(tmp / "sum.txt").substr(0, 64);
  const std::string hash = Hash(path);
  EXPECT_EQ(hash, expected);
  EXPECT_EQ(hash.size(), 64u);
  EXPECT_EQ(Hash(path), hash);

  content[content.size() / 2] ^= 1;
  WriteFile(path, content);
  EXPECT_NE(Hash(path), hash);

  // The SHA-256 of "abc" (FIPS 180-2).
  WriteFile(path, "abc");
  EXPECT_EQ(Hash(path), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// ---------------------------------------------------------------------------------------------
// Files that fail

// Expects AnalyzeMedia(path) to return `code` with a message containing `reason`, and to leave
// the analysis alone.
void ExpectFailure(const std::string& path, Status::Code code, const std::string& reason) {
  MediaAnalysis a;
  a.keyframes_decoded = -1;
  const Status s = AnalyzeMedia(path, modalities::AnalyzeOptions(), &a);
  EXPECT_EQ(s.code(), code) << s.ToString();
  EXPECT_NE(s.message().find(reason), std::string::npos) << s.ToString();
  EXPECT_EQ(a.keyframes_decoded, -1);
}

TEST(MediaFailureTest, MissingFile) {
  TempDir tmp;
  ExpectFailure(tmp / "nothing-here.mp4", Status::Code::kNotFound, "no such file");
  std::string hash = "unchanged";
  EXPECT_TRUE(ContentHash(tmp / "nothing-here.mp4", &hash).IsNotFound());
  EXPECT_EQ(hash, "unchanged");
}

TEST(MediaFailureTest, Folder) {
  TempDir tmp;
  fs::create_directory(tmp / "clips.mp4");
  ExpectFailure(tmp / "clips.mp4", Status::Code::kInvalidArgument, "folder");
  std::string hash;
  EXPECT_TRUE(ContentHash(tmp / "clips.mp4", &hash).IsInvalidArgument());
}

TEST(MediaFailureTest, ZeroLengthFile) {
  TempDir tmp;
  WriteFile(tmp / "empty.mp4", "");
  ExpectFailure(tmp / "empty.mp4", Status::Code::kInvalidArgument, "empty");
}

TEST(MediaFailureTest, TextFileRenamedMp4) {
  TempDir tmp;
  std::string text;
  for (int i = 0; i < 200; ++i) text += "This is a plain text file, line " + std::to_string(i) + ".\n";
  WriteFile(tmp / "notes.mp4", text);
  ExpectFailure(tmp / "notes.mp4", Status::Code::kInvalidArgument, "not a readable media file");
}

}  // namespace
}  // namespace mosaic
