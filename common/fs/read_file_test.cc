#include "common/fs/read_file.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "gtest/gtest.h"

namespace vpn::fs {
namespace {

std::string TempDir() {
  char dir[] = "/tmp/read_file_test.XXXXXX";
  EXPECT_NE(mkdtemp(dir), nullptr);
  return dir;
}

TEST(ReadFileTest, ReadsBytesAsTheyAre) {
  const std::string path = TempDir() + "/f";
  const std::string bytes("a\0b\xff\n", 5);
  std::ofstream(path, std::ios::binary) << bytes;
  absl::StatusOr<std::string> read = ReadFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, bytes);
}

// A config naming a directory, a missing file, a device or a file too large
// gets an error naming the file and the reason, never an exception, an
// endless read or a blocked one.
TEST(ReadFileTest, ErrorsNameTheFileAndTheReason) {
  const std::string dir = TempDir();
  absl::StatusOr<std::string> read = ReadFile(dir);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message(), dir + ": Is a directory");
  read = ReadFile(dir + "/missing");
  EXPECT_TRUE(absl::IsNotFound(read.status())) << read.status();
  EXPECT_EQ(read.status().message(), dir + "/missing: No such file or directory");
  read = ReadFile("/dev/zero");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message(), "/dev/zero: not a regular file");
  const std::string fifo = dir + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  read = ReadFile(fifo);  // no writer: must not wait for one
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message(), fifo + ": not a regular file");
  const std::string big = dir + "/big";
  std::ofstream(big, std::ios::binary) << std::string(1001, 'x');
  read = ReadFile(big, 1000);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message(), big + ": larger than 1000 bytes");
  EXPECT_FALSE(ReadFile("").ok());
}

}  // namespace
}  // namespace vpn::fs
