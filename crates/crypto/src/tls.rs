//! A TLS client over memory buffers, for TURN over TLS (`turns:`): OpenSSL
//! with the system's trust store (or `SSL_CERT_FILE`), the server's name or
//! IP address checked against its certificate, no I/O of its own.

use openssl::ssl::{ErrorCode, SslConnector, SslMethod, SslStream};
use std::io::{Read, Write};

/// Stream bytes standing in for a socket.
#[derive(Default)]
struct ByteIo {
    rx: Vec<u8>,
    tx: Vec<u8>,
}

impl Read for ByteIo {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.rx.is_empty() {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        let n = self.rx.len().min(buf.len());
        buf[..n].copy_from_slice(&self.rx[..n]);
        self.rx.drain(..n);
        Ok(n)
    }
}

impl Write for ByteIo {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Bytes of plaintext held before the handshake is done, at most.
pub const MAX_PENDING: usize = 256 * 1024;

/// One TLS client session.
pub struct OpenSslTls {
    stream: SslStream<ByteIo>,
    connected: bool,
    pending: Vec<u8>,
}

impl std::fmt::Debug for OpenSslTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenSslTls")
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

/// Makes [`OpenSslTls`] clients.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenSslTlsConnector;

impl softbus_rtc::crypto::TlsConnector for OpenSslTlsConnector {
    fn client(&self, server_name: &str) -> Result<Box<dyn softbus_rtc::crypto::TlsClient>, String> {
        let connector = SslConnector::builder(SslMethod::tls_client())
            .map_err(|e| e.to_string())?
            .build();
        // Checks the name (or the IP address) against the certificate, and sends SNI for a name.
        let ssl = connector
            .configure()
            .and_then(|c| c.into_ssl(server_name))
            .map_err(|e| e.to_string())?;
        let stream = SslStream::new(ssl, ByteIo::default()).map_err(|e| e.to_string())?;
        Ok(Box::new(OpenSslTls {
            stream,
            connected: false,
            pending: Vec::new(),
        }))
    }
}

impl OpenSslTls {
    fn handshake(&mut self) -> Result<(), String> {
        if self.connected {
            return Ok(());
        }
        match self.stream.connect() {
            Ok(()) => {
                self.connected = true;
                let pending = std::mem::take(&mut self.pending);
                if !pending.is_empty() {
                    self.stream.write_all(&pending).map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Err(e) if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE => {
                Ok(())
            }
            Err(e) => Err(match self.stream.ssl().verify_result() {
                openssl::x509::X509VerifyResult::OK => e.to_string(),
                v => format!("certificate not accepted: {}", v.error_string()),
            }),
        }
    }
}

impl softbus_rtc::crypto::TlsClient for OpenSslTls {
    fn start(&mut self) -> Result<(), String> {
        self.handshake()
    }

    fn write(&mut self, plain: &[u8]) -> Result<(), String> {
        if self.connected {
            return self.stream.write_all(plain).map_err(|e| e.to_string());
        }
        if self.pending.len() + plain.len() > MAX_PENDING {
            return Err("too much to send before the TLS handshake is done".into());
        }
        self.pending.extend_from_slice(plain);
        Ok(())
    }

    fn handle_input(&mut self, cipher: &[u8]) -> Result<Vec<u8>, String> {
        self.stream.get_mut().rx.extend_from_slice(cipher);
        self.handshake()?;
        let mut out = Vec::new();
        if !self.connected {
            return Ok(out);
        }
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.stream.ssl_read(&mut buf) {
                Ok(0) => return Err("the server closed TLS".into()),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.code() == ErrorCode::WANT_READ => return Ok(out),
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                    return Err("the server closed TLS".into())
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn poll_output(&mut self) -> Option<Vec<u8>> {
        let tx = std::mem::take(&mut self.stream.get_mut().tx);
        (!tx.is_empty()).then_some(tx)
    }
}
