// The main() of a fuzz target outside libFuzzer: runs LLVMFuzzerTestOneInput
// once over every file named on the command line, or in a directory named
// there (not recursive, in name order, so a failure reproduces). This is how
// the committed corpora run as ordinary tests under `bazel test //...`, and
// how a reproducer is replayed in the g++ build:
//   bazel run //tests/fuzz:frame_fuzz -- /path/to/crash-1234
//
// Fails (exit 1) when an argument is missing or a directory holds no input:
// a replay test whose corpus went missing must not pass by running nothing.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool run_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return false;
  }
  const std::vector<char> bytes{std::istreambuf_iterator<char>(in),
                                std::istreambuf_iterator<char>()};
  // A copy of exactly the file's size, so that ASan sees a read past its end.
  std::vector<uint8_t> input(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(input.empty() ? nullptr : input.data(), input.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
    return 1;
  }
  size_t total = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::directory_iterator(arg, ec)) {
        if (entry.is_regular_file(ec)) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());
      if (files.empty()) {
        std::fprintf(stderr, "replay: %s holds no input\n", arg.c_str());
        return 1;
      }
      for (const auto& f : files) {
        if (!run_file(f)) return 1;
      }
      std::printf("replay: %zu inputs from %s\n", files.size(), arg.c_str());
      total += files.size();
    } else if (std::filesystem::is_regular_file(arg, ec)) {
      if (!run_file(arg)) return 1;
      ++total;
    } else {
      std::fprintf(stderr, "replay: %s does not exist\n", arg.c_str());
      return 1;
    }
  }
  std::printf("replay: ran %zu inputs, all passed\n", total);
  return 0;
}
