#include "api/credentials.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <regex>

namespace berth::api {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "berth-credentials-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (fs::path(path_) / name).string(); }

 private:
  std::string path_;
};

TEST(CredentialsTest, ParsesTheAwsSharedCredentialsFormat) {
  auto store = CredentialStore::parse(
      "# written by hand\n"
      "[default]\n"
      "aws_access_key_id = AKIADEFAULT\n"
      "aws_secret_access_key = abc/def+ghi=\n"
      "\n"
      "; another comment\n"
      "  [ ci ]  \n"
      "\taws_access_key_id=AKIACI\t\n"
      "AWS_SECRET_ACCESS_KEY   =    s2   \n"
      "aws_session_token = ignored\n"
      "region = us-east-1\n");
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(store->size(), 2u);
  const AccessKey* def = store->find("AKIADEFAULT");
  ASSERT_NE(def, nullptr);
  EXPECT_EQ(def->profile, "default");
  EXPECT_EQ(def->secret_access_key, "abc/def+ghi=");
  const AccessKey* ci = store->find("AKIACI");
  ASSERT_NE(ci, nullptr);
  EXPECT_EQ(ci->profile, "ci");
  EXPECT_EQ(ci->secret_access_key, "s2");
  EXPECT_EQ(store->find("AKIANONE"), nullptr);
}

TEST(CredentialsTest, AcceptsCrlfAndBomAndNoFinalNewline) {
  auto store = CredentialStore::parse(
      "\xEF\xBB\xBF[w]\r\naws_access_key_id = AKIAW\r\naws_secret_access_key = sw");
  ASSERT_TRUE(store.ok()) << store.error().message;
  ASSERT_NE(store->find("AKIAW"), nullptr);
  EXPECT_EQ(store->find("AKIAW")->secret_access_key, "sw");
}

TEST(CredentialsTest, SkipsProfilesWithoutBothKeys) {
  auto store = CredentialStore::parse(
      "[half]\naws_access_key_id = AKIAHALF\n"
      "[full]\naws_access_key_id = AKIAFULL\naws_secret_access_key = s\n"
      "[other]\nregion = eu-west-1\n");
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(store->size(), 1u);
  EXPECT_EQ(store->find("AKIAHALF"), nullptr);
  EXPECT_NE(store->find("AKIAFULL"), nullptr);
}

TEST(CredentialsTest, RejectsWhatIsNotIni) {
  for (const char* text : {"aws_access_key_id = AKIA\n",  // before any section
                           "[default\naws_access_key_id = A\n", "[default]\njust words\n"}) {
    auto store = CredentialStore::parse(text);
    ASSERT_FALSE(store.ok()) << text;
    EXPECT_EQ(store.error().code, CredentialsErrc::syntax) << text;
    EXPECT_NE(store.error().message.find("line "), std::string::npos);
  }
  for (const char* text : {"", "# nothing\n", "[a]\n[b]\nregion = x\n"}) {
    auto store = CredentialStore::parse(text);
    ASSERT_FALSE(store.ok()) << text;
    EXPECT_EQ(store.error().code, CredentialsErrc::empty);
  }
}

TEST(CredentialsTest, CreateFileThenLoad) {
  TempDir dir;
  const std::string path = dir.file("credentials");
  auto created = CredentialStore::create_file(path, "berth");
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(created->profile, "berth");
  EXPECT_TRUE(std::regex_match(created->access_key_id, std::regex("AKIA[A-Z2-7]{16}")))
      << created->access_key_id;
  EXPECT_TRUE(std::regex_match(created->secret_access_key, std::regex("[A-Za-z0-9+/]{40}")))
      << created->secret_access_key;

  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto loaded = CredentialStore::load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const AccessKey* key = loaded->find(created->access_key_id);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(key->secret_access_key, created->secret_access_key);
  EXPECT_EQ(key->profile, "berth");
}

TEST(CredentialsTest, CreateFileNeverOverwrites) {
  TempDir dir;
  const std::string path = dir.file("credentials");
  auto first = CredentialStore::create_file(path, "default");
  ASSERT_TRUE(first.ok());
  auto second = CredentialStore::create_file(path, "default");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, CredentialsErrc::io);
  auto loaded = CredentialStore::load(path);
  ASSERT_TRUE(loaded.ok());
  EXPECT_NE(loaded->find(first->access_key_id), nullptr);  // the first key still works
}

TEST(CredentialsTest, FreshKeysDiffer) {
  TempDir dir;
  auto a = CredentialStore::create_file(dir.file("a"), "default");
  auto b = CredentialStore::create_file(dir.file("b"), "default");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->access_key_id, b->access_key_id);
  EXPECT_NE(a->secret_access_key, b->secret_access_key);
}

TEST(CredentialsTest, CreateFileRejectsProfileNamesThatBreakIni) {
  TempDir dir;
  for (const char* bad : {"", "a]b", "a\nb", " padded"}) {
    auto r = CredentialStore::create_file(dir.file("c"), bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, CredentialsErrc::syntax);
  }
  EXPECT_FALSE(fs::exists(dir.file("c")));
}

TEST(CredentialsTest, LoadReportsMissingFile) {
  auto r = CredentialStore::load("/nonexistent/berth/credentials");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, CredentialsErrc::io);
  EXPECT_NE(r.error().message.find("/nonexistent/berth/credentials"), std::string::npos);
}

}  // namespace
}  // namespace berth::api

namespace berth::api {
namespace {

TEST(CredentialStoreProfiles, FindsByNameAndFirstInFileOrder) {
  auto store = CredentialStore::parse(
      "[zeta]\naws_access_key_id = AKIAZ\naws_secret_access_key = z\n"
      "[alpha]\naws_access_key_id = AKIAA\naws_secret_access_key = a\n");
  ASSERT_TRUE(store.ok());
  ASSERT_NE(store->profile("alpha"), nullptr);
  EXPECT_EQ(store->profile("alpha")->access_key_id, "AKIAA");
  // Empty means the first profile as written, not the first in key order.
  EXPECT_EQ(store->profile("")->access_key_id, "AKIAZ");
  EXPECT_EQ(store->profile("nope"), nullptr);
}

}  // namespace
}  // namespace berth::api
