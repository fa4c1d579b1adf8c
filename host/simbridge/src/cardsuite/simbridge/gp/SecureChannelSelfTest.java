package cardsuite.simbridge.gp;

import java.util.Arrays;

/**
 * Checks the SCP02/SCP03 primitives against published vectors; exits 1 on a mismatch.
 *
 *   java -cp build/simbridge/classes cardsuite.simbridge.gp.SecureChannelSelfTest
 *
 * Sources (data only): RFC 4493 §4 (AES-CMAC); osmocom pySim, tests/unittests/test_globalplatform.py (classes
 * SCP02_Test, SCP03_Test_AES128_11, SCP03_Test_AES128_03, SCP03_Test_AES256_11): full sessions with the keys,
 * host challenge, the card's INITIALIZE UPDATE response, the host's EXTERNAL AUTHENTICATE and wrapped commands.
 */
public final class SecureChannelSelfTest {
    private int failures;
    private int checks;

    public static void main(String[] args) {
        SecureChannelSelfTest test = new SecureChannelSelfTest();
        test.run();
        System.out.println(test.checks + " checks, " + test.failures + " failed");
        System.exit(test.failures == 0 ? 0 : 1);
    }

    /** Runs every vector; returns the number of mismatches (0 = all good). For a Python test through JPype. */
    public static int runAll() {
        SecureChannelSelfTest test = new SecureChannelSelfTest();
        test.run();
        return test.failures;
    }

    private void run() {
        aesCmacRfc4493();
        scp02PySim();
        scp03Aes128CMacRMac();
        scp03Aes128CDec();
        scp03Aes256();
    }

    private void aesCmacRfc4493() {
        byte[] key = h("2b7e151628aed2a6abf7158809cf4f3c");
        check("RFC 4493 example 1", Scp03.aesCmac(key, new byte[0]), "bb1d6929e95937287fa37d129b756746");
        check("RFC 4493 example 2", Scp03.aesCmac(key, h("6bc1bee22e409f96e93d7e117393172a")),
                "070a16b46b4d4144f79bdd9dd04a287c");
        check("RFC 4493 example 3", Scp03.aesCmac(key, h("6bc1bee22e409f96e93d7e117393172a"
                + "ae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411")), "dfa66747de9ae63030ca32611497c827");
        check("RFC 4493 example 4", Scp03.aesCmac(key, h("6bc1bee22e409f96e93d7e117393172a"
                + "ae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52ef"
                + "f69f2445df4f9b17ad2b417be66c3710")), "51f0bebf7e3b9d92fc49741779363cfe");
    }

    /** pySim SCP02_Test: keys 1001…/1011…/1021…, sequence counter 0001, C-MAC with ICV encryption. */
    private void scp02PySim() {
        byte[] enc = h("100102030405060708090a0b0c0d0e0f");
        byte[] mac = h("101102030405060708090a0b0c0d0e0f");
        byte[] hostChallenge = h("40A62C37FA6304F8");
        byte[] seq = h("0001");
        byte[] cardChallenge = h("6B4524ABEE7C");
        byte[] sEnc = Scp02.deriveSessionKey(enc, Scp02.CONSTANT_S_ENC, seq);
        byte[] sMac = Scp02.deriveSessionKey(mac, Scp02.CONSTANT_C_MAC, seq);
        check("SCP02 card cryptogram", Scp02.cardCryptogram(sEnc, hostChallenge, seq, cardChallenge),
                "F32EA3838BC148F3");
        check("SCP02 host cryptogram", Scp02.hostCryptogram(sEnc, seq, cardChallenge, hostChallenge),
                "BA6961667737C5BC");
        byte[] icv = Scp02.retailMac(sMac, new byte[8], h("8482010010BA6961667737C5BC"));
        check("SCP02 EXTERNAL AUTHENTICATE C-MAC", icv, "EBECE14C7D6A4376");
        String[][] wrapped = {
            {"84F2200208", "14DB34FA4341DCA8"},
            {"84CA006608", "55ED7C5FF069512B"},
            {"84F22002124F0212345C054F9F70C5", "8FC1B380C4228AF8"},
            {"84F280020A4F00", "3B95F09317DE6A4E"},
        };
        for (String[] command : wrapped) {
            icv = Scp02.retailMac(sMac, Scp02.encryptIcv(sMac, icv), h(command[0]));
            check("SCP02 C-MAC of " + command[0], icv, command[1]);
        }
    }

    /** pySim SCP03_Test_AES128_11: i=70, security level 11 (C-MAC, R-MAC). */
    private void scp03Aes128CMacRMac() {
        Session s = scp03(h("000102030405060708090a0b0c0d0e0f"), h("101112131415161718191a1b1c1d1e1f"),
                "b13e5f938fc108c4", "3eb51047495b249f", "66c484c1d2ef1948", "8482110010", "7d5f5826a993ebc8",
                "9eea24957fa0b3ce", "AES-128/11");
        s.mac("84e291000ebf3e035c015a", "558d036518a28297");
        check("SCP03 AES-128/11 R-MAC", Scp03.responseMac(s.sRmac, s.chaining,
                h("bf3e125a1089882119900000000000000000000005"), 0x9000), "971be68992dbbdfa");
        s.mac("84f2200208", "63a63f8959827fb2");
        s.mac("84ca006608", "a0c6a4a74166f7ce");
        s.mac("84f22002124f0212345c054f9f70c5", "2249b50272656536");
        s.mac("84f280020a4f00", "e91443f6dce6b8ed");
    }

    /** pySim SCP03_Test_AES128_03: security level 03 (C-DEC, C-MAC); the counter moves on every command. */
    private void scp03Aes128CDec() {
        Session s = scp03(h("000102030405060708090a0b0c0d0e0f"), h("101112131415161718191a1b1c1d1e1f"),
                "8e1552d0513c60f3", "30760cd2c47c1dd3", "95065fe5ead8a9d7", "8482030010", "fd4721a14d9b0700",
                "3c451d2f8ae6bb21", "AES-128/03");
        s.macAndDecrypt("84e2910018", "ca9c00f6713d79bc8baa642bdff51c3f", "6a4082d3bd9ad26c", 1, "BF3E035C015A");
        s.macAndDecrypt("84f2200208", "", "c9811b11f1264cf1", 2, "");
        s.macAndDecrypt("84ca006608", "", "e10ab60b30547988", 3, "");
        s.macAndDecrypt("84f2200218", "4e2908bdb48b2315a55482e9e936ca12", "2d6ecfae7d17416e", 4,
                "4F0212345C054F9F70C5");
        s.macAndDecrypt("84f2800218", "0dd10a6b6193e5340b9e77d32d5a179c", "d710ac2773aefb28", 5, "4F00");
    }

    /** pySim SCP03_Test_AES256_11: 32-byte keys, so the KDF runs two blocks. */
    private void scp03Aes256() {
        byte[] enc = h("000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f");
        byte[] mac = h("101112131415161718191a1b1c1d1e1f101112131415161718191a1b1c1d1e1f");
        Session s = scp03(enc, mac, "11666d57866c6f54", "53ea8847efa7674e", "41498a4d66cf0dee", "8482110010",
                "2f2ad190eff2fafc", "4908996d1cebd310", "AES-256/11");
        s.mac("84e291000ebf3e035c015a", "f4b680372542b59d"); // the vector's commands run in order: the chain
        s.mac("84f2200208", "d618b7da68d5fe52");
    }

    private Session scp03(byte[] enc, byte[] mac, String hostChallenge, String cardChallenge, String cardCryptogram,
                          String extAuthHeader, String hostCryptogram, String extAuthMac, String name) {
        Session s = new Session(name);
        byte[] hc = h(hostChallenge);
        byte[] cc = h(cardChallenge);
        s.sEnc = Scp03.deriveSessionKey(enc, Scp03.CONSTANT_S_ENC, hc, cc);
        s.sMac = Scp03.deriveSessionKey(mac, Scp03.CONSTANT_S_MAC, hc, cc);
        s.sRmac = Scp03.deriveSessionKey(mac, Scp03.CONSTANT_S_RMAC, hc, cc);
        check("SCP03 " + name + " card cryptogram", Scp03.cardCryptogram(s.sMac, hc, cc), cardCryptogram);
        check("SCP03 " + name + " host cryptogram", Scp03.hostCryptogram(s.sMac, hc, cc), hostCryptogram);
        s.mac(extAuthHeader + hostCryptogram, extAuthMac);
        return s;
    }

    /** One SCP03 session's keys and MAC chaining value, host-side. */
    private final class Session {
        final String name;
        byte[] sEnc;
        byte[] sMac;
        byte[] sRmac;
        byte[] chaining = new byte[16];

        Session(String name) {
            this.name = name;
        }

        void mac(String command, String expected) {
            chaining = Scp03.commandMac(sMac, chaining, h(command));
            check("SCP03 " + name + " C-MAC of " + command, Arrays.copyOf(chaining, 8), expected);
        }

        void macAndDecrypt(String header, String encrypted, String expectedMac, long counter, String plain) {
            mac(header + encrypted, expectedMac);
            if (!encrypted.isEmpty()) {
                check("SCP03 " + name + " C-DEC #" + counter, Scp03.decryptCommandData(sEnc, counter, h(encrypted)),
                        plain);
                check("SCP03 " + name + " C-ENC #" + counter, Scp03.encryptCommandData(sEnc, counter, h(plain)),
                        encrypted);
            }
        }
    }

    private void check(String what, byte[] actual, String expected) {
        checks++;
        if (!Arrays.equals(actual, h(expected))) {
            failures++;
            System.out.println("FAIL " + what + ": got " + Bytes.hex(actual) + ", expected " + expected.toUpperCase());
        }
    }

    private static byte[] h(String hex) {
        return Bytes.fromHex(hex);
    }
}
