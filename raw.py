import socket, json, sys
out=json.load(open('/tmp/smoke/out.txt'))['outbound']
h,p=out.split(':')
def send(data, label):
    s=socket.create_connection((h,int(p))); s.settimeout(3)
    s.sendall(data)
    buf=b''
    try:
        while True:
            d=s.recv(65536)
            if not d: buf+=b'<CLOSED>'; break
            buf+=d
    except socket.timeout: buf+=b'<OPEN>'
    print(label, '->', buf.split(b'\r\n')[0], buf[-10:])
send(b'GET / HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'CL+TE')
send(b'GET / HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', 'CL conflict')
send(b'GET / HTTP/1.1\r\nHost: web\r\nX-Big: '+b'a'*70000+b'\r\n\r\n', 'big header')
send(b'GET / HTTP/1.1\r\nHost: web\r\n'+b''.join(b'X-H%d: 1\r\n'%i for i in range(120))+b'\r\n', '120 headers')
send(b'GET  / HTTP/1.1\r\nHost: web\r\n\r\n', 'double space')
send(b'G\x00T / HTTP/1.1\r\nHost: web\r\n\r\n', 'NUL method')
send(b'GET / HTTP/1.2\r\nHost: web\r\n\r\n', 'HTTP/1.2')
send(b'CONNECT /x HTTP/1.1\r\nHost: web\r\n\r\n', 'CONNECT origin-form')
send(b'GET / HTTP/1.1\r\nHost: web\r\nX-A: a\rb\r\n\r\n', 'bare CR')
